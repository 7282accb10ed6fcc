/// Blocks by id, up to a fixed number of them: open addressing over 4-byte slots holding
/// `index + 1` (0 is empty), kept at most half full, beside the ids and locations themselves.
///
/// Why bounded: a backup looks up the blocks of the parent point (a page that moved is not
/// uploaded again) and the blocks sealed in this run (equal pages are stored once), and a table of
/// every page would grow with the database (40 bytes a page). Past its capacity the table takes
/// no more: a block it does not know is uploaded again, which costs bytes, never correctness.
/// Ids are keyed HMACs (docs/format-incremental.md, 3): nobody without the key can choose ids that
/// collide in this table, so their first 8 bytes are used as the hash as they are.
struct BlockTable {
    private var slots: [UInt32]
    private var ids: [BlockID] = []
    private var locations: [BlockLocation] = []
    private let mask: Int
    let capacity: Int

    /// A table for up to `capacity` blocks; memory is taken as blocks come (40 bytes each).
    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [UInt32](repeating: 0, count: size)
        mask = size - 1
        self.capacity = capacity
    }

    var count: Int { ids.count }
    var isFull: Bool { ids.count >= capacity }

    /// Where the block with this id is, if the table holds it.
    func find(_ id: BlockID) -> BlockLocation? {
        var s = Int(truncatingIfNeeded: id.hi) & mask
        while true {
            let v = slots[s]
            if v == 0 { return nil }
            if ids[Int(v) - 1] == id { return locations[Int(v) - 1] }
            s = (s + 1) & mask
        }
    }

    /// Adds a block unless the table holds its id already or is full.
    mutating func insert(_ id: BlockID, at location: BlockLocation) {
        guard !isFull else { return }
        var s = Int(truncatingIfNeeded: id.hi) & mask
        while slots[s] != 0 {
            if ids[Int(slots[s]) - 1] == id { return }
            s = (s + 1) & mask
        }
        ids.append(id)
        locations.append(location)
        slots[s] = UInt32(ids.count)
    }
}
