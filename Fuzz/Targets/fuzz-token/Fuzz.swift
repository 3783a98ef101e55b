import MeshCAFuzzEntries

let target = FuzzTarget.named("token")

/// libFuzzer's entry point; see Fuzz/Entries and scripts/fuzz.sh.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    target.runBlocking(data, size)
    return 0
}
