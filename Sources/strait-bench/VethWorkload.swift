/// `veth NETNS COUNT`: creates COUNT veth pairs inside NETNS through StraitNetlink, then deletes them.
/// (Owned by the StraitNetlink work; written when that module lands.)
func vethWorkload(_ arguments: [String]) throws {
    struct NotYetBuilt: Error {}
    throw NotYetBuilt()
}
