/// Where a profile's backups are kept and recorded: its store (with the credentials of the role a
/// command needs) and its catalog. Jobs receive one instead of building their own, so that a
/// caller can hand a job any store (a test, a fault injector, another destination); by default
/// it is made from the settings.
///
/// A job asks for each part when its checks reach that step: the order of a job's checks, and so
/// which error a run with several problems reports, stays the job's own.
public struct Repository {
    private let makeStore: (S3Configuration.Role) throws -> ObjectStore
    private let openCatalog: (_ readOnly: Bool) throws -> Catalog

    /// The store and catalog the settings name.
    public init(settings: Settings) {
        makeStore = { try settings.makeStore(role: $0) }
        openCatalog = { try settings.openCatalog(readOnly: $0) }
    }

    public init(
        store: @escaping (S3Configuration.Role) throws -> ObjectStore,
        catalog: @escaping (_ readOnly: Bool) throws -> Catalog
    ) {
        makeStore = store
        openCatalog = catalog
    }

    /// The store, with the credentials of `role` (S3: see `S3Configuration.Role`).
    public func store(role: S3Configuration.Role = .write) throws -> ObjectStore { try makeStore(role) }

    /// The catalog, waiting up to `BACKUP_BUSY_TIMEOUT` for the application's write lock.
    public func catalog(readOnly: Bool = false) throws -> Catalog { try openCatalog(readOnly) }
}
