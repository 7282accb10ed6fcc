/// Finds a block id among the ids of a page map by its position: open addressing over 4-byte
/// slots holding `index + 1` (0 is empty), kept at most half full.
///
/// Why not `[BlockID: UInt32]`: a Dictionary costs about 40 bytes an entry, and a backup of a
/// 1 GiB database needs two such sets of 2^18 entries (the parent's blocks and the blocks sealed
/// in this run); this costs 8 to 16 bytes an entry and keeps the run under its 64 MiB bound. Ids
/// are keyed HMACs (docs/format-incremental.md, 3): nobody without the key can choose ids that
/// collide in this table, so its first 8 bytes are used as the hash as they are.
struct BlockIndex {
    private var slots: [UInt32]
    private let mask: Int

    /// A table for up to `capacity` ids.
    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [UInt32](repeating: 0, count: size)
        mask = size - 1
    }

    /// The position in `ids` of an entry equal to `id`, if one was inserted.
    func find(_ id: BlockID, in ids: [BlockID]) -> Int? {
        var s = Int(truncatingIfNeeded: id.hi) & mask
        while true {
            let v = slots[s]
            if v == 0 { return nil }
            if ids[Int(v) - 1] == id { return Int(v) - 1 }
            s = (s + 1) & mask
        }
    }

    /// Records that `ids[index]` is present; the caller inserts each id at most once, and never
    /// more ids than the capacity it asked for.
    mutating func insert(_ index: Int, of ids: [BlockID]) {
        var s = Int(truncatingIfNeeded: ids[index].hi) & mask
        while slots[s] != 0 { s = (s + 1) & mask }
        slots[s] = UInt32(index + 1)
    }
}
