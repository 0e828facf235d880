"""cc_grpc_proto_library: C++ protobuf and gRPC code from Debian's protoc.

Runs the system protoc with grpc_cpp_plugin in a genrule, so nothing is
downloaded. Generated headers are included by their path under the package
(e.g. "audiosocket/bridge/v1/bridge.pb.h" for proto/audiosocket/bridge/v1/bridge.proto).
"""

def cc_grpc_proto_library(name, srcs, deps = [], grpc = True, visibility = None):
    """Generates and compiles C++ message (and optionally service) code.

    Args:
      name: the cc_library to create.
      srcs: .proto files, relative to this package, which is the import root.
      deps: other cc_grpc_proto_library targets whose protos srcs import.
      grpc: also generate service stubs (.grpc.pb.*).
      visibility: of the cc_library.
    """
    package = native.package_name()
    hdrs = []
    cc_srcs = []
    for src in srcs:
        base = src[:-len(".proto")]
        hdrs.append(base + ".pb.h")
        cc_srcs.append(base + ".pb.cc")
        if grpc:
            hdrs.append(base + ".grpc.pb.h")
            cc_srcs.append(base + ".grpc.pb.cc")

    root = package if package else "."
    grpc_flags = "--grpc_out=$(GENDIR)/%s --plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) " % root if grpc else ""
    native.genrule(
        name = name + "_codegen",
        srcs = srcs + [d + "_srcs" for d in deps],
        outs = hdrs + cc_srcs,
        cmd = ("protoc -I%s --cpp_out=$(GENDIR)/%s " % (root, root)) + grpc_flags +
              " ".join(["%s/%s" % (root, s) for s in srcs]),
        message = "protoc " + name,
    )
    native.filegroup(
        name = name + "_srcs",
        srcs = srcs,
        visibility = visibility,
    )
    native.cc_library(
        name = name,
        srcs = cc_srcs,
        hdrs = hdrs,
        includes = ["."],
        deps = deps + ["@system//:protobuf"] + (["@system//:grpc"] if grpc else []),
        visibility = visibility,
    )
