import Foundation
import HTTPServer
import Postgres

/// `/v1/safeguarding-alerts`: list and acknowledge. (Being built.)
struct SafeguardingRoutes {
    let access: AccessControl

    func add(to router: inout RouterBuilder) {}
}
