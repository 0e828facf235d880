"""A repository rule that turns pkg-config modules into cc_library targets.

Link flags come from `pkg-config --libs`, so a new Abseil or gRPC dependency
needs only its module name here, never a hand-kept list of -l flags.
"""

def _words(text):
    # Bazel 4's Starlark split() needs a separator.
    return [w for w in text.replace("\n", " ").replace("\t", " ").split(" ") if w]

def _dedupe_keep_last(flags):
    # For static archives the last occurrence is the one that matters for
    # link order; for shared libraries any occurrence works.
    seen = {}
    out = []
    for flag in reversed(flags):
        if flag in seen:
            continue
        seen[flag] = True
        out.append(flag)
    return reversed(out)

def _pkg_config(rctx, pkg_config, args, modules):
    result = rctx.execute([pkg_config] + args + modules)
    if result.return_code != 0:
        fail("pkg-config %s %s failed (install the Debian packages with tools/install-deps.sh): %s" %
             (" ".join(args), " ".join(modules), result.stderr))
    return _words(result.stdout)

def _pkg_config_repository_impl(rctx):
    pkg_config = rctx.which("pkg-config")
    if pkg_config == None:
        fail("pkg-config is not installed; run tools/install-deps.sh")
    lines = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, modules in sorted(rctx.attr.libraries.items()):
        module_list = _words(modules)
        libs = _pkg_config(rctx, pkg_config, ["--libs"], module_list)
        libs += _words(rctx.attr.extra_linkopts.get(name, ""))
        defines = []
        for flag in _pkg_config(rctx, pkg_config, ["--cflags"], module_list):
            if flag.startswith("-D"):
                defines.append(flag[2:])
            elif flag == "-pthread":
                libs.append(flag)
            elif flag not in ("-I/usr/include", "-isystem/usr/include"):
                # copts do not propagate to dependents, so a flag we cannot
                # express as a define would be silently lost: refuse it.
                fail("pkg-config module(s) %s need compile flag %s, which this rule cannot forward" %
                     (modules, flag))
        lines.append("cc_library(")
        lines.append("    name = %r," % name)
        lines.append("    defines = %r," % defines)
        lines.append("    linkopts = %r," % list(_dedupe_keep_last(libs)))
        lines.append(")")
        lines.append("")
    rctx.file("BUILD.bazel", "\n".join(lines))
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)

pkg_config_repository = repository_rule(
    implementation = _pkg_config_repository_impl,
    attrs = {
        "libraries": attr.string_dict(
            doc = "target name -> space-separated pkg-config modules",
        ),
        "extra_linkopts": attr.string_dict(
            doc = "target name -> space-separated flags for libraries without a .pc file",
        ),
    },
    environ = ["PKG_CONFIG_PATH"],
    local = True,
)
