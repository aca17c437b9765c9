import Foundation

// `heard <command> [options]`: see `heard --help`.
let status = await CommandLineInterface.run(Array(CommandLine.arguments.dropFirst()))
exit(status)
