import Testing
@testable import StraitNFT

@Suite("StraitNFT typeof user data")
struct SetTypeofTests {
    /// `typeof meta l4proto` as nft 1.0.6 writes it (`nft --debug=mnl add map ip t m { typeof meta l4proto : ip daddr; }`):
    /// expression kind 9 (meta), its key 16 (l4proto).
    @Test("meta l4proto is written as nft writes it and reads back")
    func metaL4proto() {
        let bytes: [UInt8] = [0, 4, 9, 0, 0, 0, 1, 6, 0, 4, 16, 0, 0, 0]
        #expect(TypeofExpression.meta(.l4proto).userData == bytes)
        #expect(TypeofExpression(userData: bytes) == .meta(.l4proto))
        let key: TypeofExpression = .concat([.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport), .numgen(modulus: 2)])
        #expect(TypeofExpression(userData: key.userData) == key)
    }
}
