import ArgumentParser

/// Every subcommand, in the order `--help` lists them.
let commandList: [ParsableCommand.Type] = [
    BackupCommand.self,
    RestoreCommand.self,
    VerifyCommand.self,
    ListCommand.self,
    MigrateCommand.self,
    CleanCommand.self,
    KeygenCommand.self,
    DemoCommand.self,
    PresignCommand.self,
    ConfigCommand.self,
    CatalogCommand.self,
    ProfilesCommand.self,
    StatusCommand.self,
    DoctorCommand.self,
    DebugStoreCommand.self
]
