/// Where nftables transactions go and tables are read back from: the kernel through
/// `NFTConnection`, or `FakeNFTKernel` in memory, so code that programs nftables is tested
/// without root the same way it runs (as knftables' `Interface` with its `Fake`).
public protocol NFTKernel: Sendable {
    /// Applies every change of `transaction`, or (on any error) none. Equivalent: `nft -f FILE`.
    func commit(_ transaction: Transaction) throws(NFTError)
    /// A table's chains, named sets with their elements, and rules; nil if it does not exist.
    /// Equivalent: `nft list table FAMILY NAME`.
    func list(_ table: Table) throws(NFTError) -> TableContents?
    /// Every table, of one family or (nil) of all. Equivalent: `nft list tables`.
    func tables(_ family: Family?) throws(NFTError) -> [Table]
}

extension NFTConnection: NFTKernel {}
