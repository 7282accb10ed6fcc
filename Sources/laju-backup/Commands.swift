import ArgumentParser

/// Every subcommand, in the order `--help` lists them.
let commandList: [ParsableCommand.Type] = [
    BackupCommand.self,
    RestoreCommand.self,
    VerifyCommand.self,
    ListCommand.self,
    KeygenCommand.self,
    DemoCommand.self,
]
