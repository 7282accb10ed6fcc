/// `[String: String]` to and from JSON with JSONEncoder (JSONSerialization is not in
/// FoundationEssentials). Keys sorted so files are stable.
enum JSONSerializationLite {
    static func encode(_ dict: [String: String]) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try enc.encode(dict)
    }
    static func decode(_ data: Data) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: data)
    }
}
