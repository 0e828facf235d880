"""A real-Asterisk test suite: large, manual (it needs ASTERISK_PREFIX), the
bridge binary as data, the shared suite fixture."""

def asterisk_suite_test(name, srcs, deps = [], **kwargs):
    native.cc_test(
        name = name,
        size = "large",
        srcs = srcs,
        data = ["//server:audiosocket-bridge"],
        tags = [
            "asterisk",
            "manual",
        ],
        deps = [
            ":asterisk_fixture",
            ":asterisk_suite",
            "//tests/support:bridge_harness",
            "@system//:absl",
            "@system//:gmock_main",
            "@system//:grpc",
        ] + deps,
        **kwargs
    )
