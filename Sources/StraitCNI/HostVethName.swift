import StraitSystem

/// The host end of a pod's veth pair is named from (containerID, ifname), so DEL and GC find it
/// without any state: `st` and 12 hex digits of a 64-bit FNV-1a hash (14 bytes, under IFNAMSIZ).
public func hostVethName(for key: AttachmentKey) -> String {
    // The bytes of "containerID/ifname".
    var hash = FNV1a()
    hash.add(key.containerID)
    hash.add(UInt8(ascii: "/"))
    hash.add(key.ifname)
    // The first 12 of the hash's 16 zero-padded hex digits.
    return "st" + HexDigits.text(hash.value >> 16, count: 12)
}

/// True for interface names `hostVethName` makes, so GC removes only strait-cni's own leftovers.
func isHostVethName(_ name: String) -> Bool {
    name.utf8.count == 14 && name.hasPrefix("st") && name.dropFirst(2).allSatisfy(\.isHexDigit)
}
