import Foundation
import HTTPServer
import Postgres

/// `GET /v1/feedback`: filtered, paged, JSON or CSV. (Being built.)
struct FeedbackListRoutes {
    let access: AccessControl

    func add(to router: inout RouterBuilder) {}
}
