import Foundation
import HeardAPI

/// The `heard` commands. Each has `--help`; configuration comes from the environment
/// (`Setting.all`), and a few options override it for one run.
enum CommandLineInterface {
    static let usage = """
        heard: the system of record for the voice of children, young people and families.

        Usage: heard <command> [options]

        Commands:
          serve      Run the HTTP API (migrates first unless --no-migrate).
          migrate    Apply pending database migrations; --status lists applied and pending.
          tenants        create <slug> --name "<name>" | list
          organisations  create --tenant <slug> <org-slug> --name "<name>" | list --tenant <slug>
          keys           create --tenant <slug> --name <label> --scopes <a,b> [--organisation <org>] [--expires <date>]
                         | list --tenant <slug> | revoke <key-id>

        Run `heard <command> --help` for a command's options.

        Environment:
        \(environmentHelp)
        """

    static var environmentHelp: String {
        Setting.all.map { "  \($0.name.padding(toLength: 25, withPad: " ", startingAt: 0)) \($0.meaning) Default: \($0.defaultValue)." }
            .joined(separator: "\n")
    }

    static func run(_ arguments: [String]) async -> Int32 {
        guard let command = arguments.first else {
            printError(usage)
            return 2
        }
        let rest = Array(arguments.dropFirst())
        do {
            switch command {
            case "serve": return try await ServeCommand.run(try Options(rest, flags: ServeCommand.flags, help: ServeCommand.help))
            case "migrate": return try await MigrateCommand.run(try Options(rest, flags: MigrateCommand.flags, help: MigrateCommand.help))
            case "tenants": return try await AdminCommands.tenants(try Options(rest, flags: AdminCommands.flags, help: AdminCommands.tenantsHelp))
            case "organisations": return try await AdminCommands.organisations(try Options(rest, flags: AdminCommands.flags, help: AdminCommands.organisationsHelp))
            case "keys": return try await AdminCommands.keys(try Options(rest, flags: AdminCommands.flags, help: AdminCommands.keysHelp))
            case "help", "-h", "--help":
                print(usage)
                return 0
            default:
                printError("heard: unknown command \(command.debugDescription)\n\n\(usage)")
                return 2
            }
        } catch let help as HelpRequested {
            print(help.text)
            return 0
        } catch let error as UsageError {
            printError("heard \(command): \(error.description)")
            return 2
        } catch let error as Registry.Failure {
            printError("heard \(command): \(error.description)")
            return 1
        } catch {
            printError("heard \(command): \(error)")
            return 1
        }
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
}

struct HelpRequested: Error {
    let text: String
}

/// `--name value`, `--name=value` and boolean `--name` options; anything else is refused.
struct Options {
    enum Kind { case flag, value }

    private var values: [String: String] = [:]
    private(set) var positional: [String] = []

    init(_ arguments: [String], flags: [String: Kind], help: String) throws {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            if argument == "--help" || argument == "-h" { throw HelpRequested(text: help) }
            guard argument.hasPrefix("--") else {
                positional.append(argument)
                continue
            }
            let body = argument.dropFirst(2)
            let name = String(body.split(separator: "=", maxSplits: 1)[0])
            guard let kind = flags[name] else { throw UsageError(description: "unknown option --\(name)\n\n\(help)") }
            switch kind {
            case .flag:
                guard !body.contains("=") else { throw UsageError(description: "--\(name) takes no value") }
                values[name] = "true"
            case .value:
                if let equals = body.firstIndex(of: "=") {
                    values[name] = String(body[body.index(after: equals)...])
                } else if let next = iterator.next() {
                    values[name] = next
                } else {
                    throw UsageError(description: "--\(name) needs a value")
                }
            }
        }
    }

    func value(_ name: String) -> String? { values[name] }

    func isSet(_ name: String) -> Bool { values[name] != nil }
}
