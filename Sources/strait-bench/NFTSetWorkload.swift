/// `nft-set NETNS COUNT`: commits COUNT set elements in one StraitNFT batch inside NETNS.
/// (Owned by the StraitNFT work; written when that module lands.)
func nftSetWorkload(_ arguments: [String]) throws {
    struct NotYetBuilt: Error {}
    throw NotYetBuilt()
}
