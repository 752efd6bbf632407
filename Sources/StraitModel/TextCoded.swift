/// A value that travels as its text, as Kubernetes writes addresses and CIDRs: encoded as its
/// `description`, decoded with its strict parser (a bad value is a decoding error naming it).
public protocol TextCoded: Codable, CustomStringConvertible {
    init(parsing text: some StringProtocol) throws(AddressError)
}

extension TextCoded {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try Self(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
