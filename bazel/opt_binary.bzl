"""An executable built with -c opt whatever the build's own mode.

Tests that measure how the bridge treats its other calls while some misbehave
run the binary users run: a fastbuild bridge spends several times the CPU on
the same work, and on a slow, shared CI host reached saturation where the
optimized one is nowhere near it.
"""

def _opt_transition_impl(settings, attr):
    return {"//command_line_option:compilation_mode": "opt"}

_opt_transition = transition(
    implementation = _opt_transition_impl,
    inputs = [],
    outputs = ["//command_line_option:compilation_mode"],
)

def _opt_binary_impl(ctx):
    binary = ctx.attr.binary[0]
    executable = binary[DefaultInfo].files_to_run.executable
    out = ctx.actions.declare_file(ctx.attr.out)
    ctx.actions.run_shell(
        inputs = [executable],
        outputs = [out],
        command = "cp \"$1\" \"$2\"",
        arguments = [executable.path, out.path],
        mnemonic = "CopyOptBinary",
    )
    runfiles = ctx.runfiles(files = [out]).merge(binary[DefaultInfo].default_runfiles)
    return [DefaultInfo(executable = out, files = depset([out]), runfiles = runfiles)]

opt_binary = rule(
    implementation = _opt_binary_impl,
    attrs = {
        "binary": attr.label(cfg = _opt_transition, executable = True, mandatory = True),
        "out": attr.string(mandatory = True, doc = "the copy's path in this package"),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
    executable = True,
)
