"""`minicnn explain conv|pool`: every output of a convolution or pooling, written out for a slide."""
from __future__ import annotations

import numpy as np


def _ints(text, what, allow_words=()):
    text = str(text).strip()
    if text.lower() in allow_words:
        return text.lower()
    try:
        parts = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        words = f", or one of {', '.join(allow_words)}" if allow_words else ""
        raise ValueError(f"{what} must be an int or 'rows,cols'{words}; got {text!r}") from None
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return tuple(parts)
    raise ValueError(f"{what} must be one or two ints, got {text!r}")


def _explain(args) -> int:
    from .. import explain as E

    example = None
    if args.example:
        spec = E.from_example(args.example)
        if spec["kind"] != args.kind:
            raise ValueError(f"{args.example} is a {spec['kind']} example; use `minicnn explain {spec['kind']}`")
        example = spec["example"]
        image = spec["image"]
    elif args.input is None:
        raise ValueError("give --input (and --kernel for conv), or --example ID")
    else:
        image = E.parse_matrix(args.input, "--input")
    at = _ints(args.at, "--at") if args.at else None
    if at is not None and not isinstance(at, tuple):
        raise ValueError("--at must be 'row,col'")

    if args.kind == "conv":
        if example is not None:
            kernel = spec["kernel"] if args.kernel is None else E.parse_matrix(args.kernel, "--kernel")
            stride = spec["stride"] if args.stride is None else _ints(args.stride, "--stride")
            padding = spec["padding"] if args.padding is None else _ints(args.padding, "--padding",
                                                                          ("valid", "same", "full"))
            bias = spec["bias"] if args.bias is None else args.bias
        else:
            if args.kernel is None:
                raise ValueError("give --kernel (numbers, a .txt/.npy file, or a lecture kernel name such as sobel_x)")
            kernel = E.parse_matrix(args.kernel, "--kernel")
            stride = 1 if args.stride is None else _ints(args.stride, "--stride")
            padding = 0 if args.padding is None else _ints(args.padding, "--padding", ("valid", "same", "full"))
            bias = 0.0 if args.bias is None else args.bias
        result = E.explain_conv(image, kernel, stride, padding, bias, at=at)
        settings = f"stride {_pair_text(result.stride)}, padding {_pair_text(result.padding)}" + \
                   (f", bias {E.fmt(result.bias)}" if result.bias else "")
        operands = [("input", result.image if result.multichannel else result.image[0]),
                    ("kernel", result.kernel if result.multichannel else result.kernel[0])]
    else:
        if example is not None:
            size = spec["kernel_size"] if args.size is None else _ints(args.size, "--size")
            stride = spec["stride"] if args.stride is None else _ints(args.stride, "--stride")
            padding = spec["padding"] if args.padding is None else _ints(args.padding, "--padding")
        else:
            if args.size is None:
                raise ValueError("give --size, the pooling window (e.g. 2)")
            size = _ints(args.size, "--size")
            stride = None if args.stride is None else _ints(args.stride, "--stride")
            padding = 0 if args.padding is None else _ints(args.padding, "--padding")
        result = E.explain_pool(image, size, stride, padding, args.mode, at=at)
        settings = (f"{args.mode} pooling, window {_pair_text(result.kernel_size)}, stride "
                    f"{_pair_text(result.stride)}, padding {_pair_text(result.padding)}")
        operands = [("input", result.image if result.multichannel else result.image[0])]

    if example is not None:
        print(f"{example.id}: {example.citation}")
    print(settings)
    if args.latex:
        for name, value in operands:
            print(f"% {name}\n$${E.latex_matrix(value)}$$")
        print(result.latex(compact=args.compact, **({"times": r"\cdot"} if args.cdot else {})))
        print(f"% output\n$${E.latex_matrix(result.output)}$$")
    else:
        for name, value in operands:
            print(f"{name}:\n{E.grid(value)}")
        print(result.text(compact=args.compact, **({"times": "·"} if args.cdot else {})))
        print(f"output:\n{E.grid(result.output)}")
    if example is not None and at is None:
        want, printed = example.expected_array()
        got = result.output
        if want.size == got.size:  # a conv2d example's expected output keeps its filter axis (1, H, W)
            want, printed = want.reshape(got.shape), printed.reshape(got.shape)
        ok = got.shape == want.shape and bool(np.all(~printed | np.isclose(got, want)))
        print("matches the slide" if ok else f"DIFFERS from the slide: slide shows\n{E.grid(np.where(printed, want, np.nan))}")
        if not ok:
            return 1
    if args.figure:
        if args.kind != "conv" or result.multichannel:
            raise ValueError("--figure draws single-channel convolutions only")
        from .. import pictures
        fig = pictures.convolution_step_figure(result.image[0], result.kernel[0], at or (0, 0), result.stride,
                                               result.padding, result.bias)
        print(f"wrote {pictures.save_png(fig, args.figure)}")
    return 0


def _pair_text(p):
    return str(p[0]) if p[0] == p[1] else f"{p[0]},{p[1]}"


def explain(args) -> int:
    try:
        return _explain(args)
    except (ValueError, KeyError) as exc:
        import sys
        print(f"minicnn explain: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2


def add_parser(sub):
    p = sub.add_parser("explain", help="write out every output of a convolution or pooling, as on the slides",
                       description="Print each output's computation, e.g. (1x1) + (1x0) + ... = 4, in text or LaTeX. "
                       "Matrices: inline '1,1,1;0,1,1;...' (rows by ';', channels by '|'), a .txt or .npy file, "
                       "or a lecture kernel name (sobel_x, x_shape, laplacian, ...). A matrix that starts with a minus sign "
                       "must be attached with '=': --input=-1,2;3,4.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, help_text in (("conv", "a convolution (cross-correlation) with one filter"),
                            ("pool", "max or average pooling")):
        q = kinds.add_parser(kind, help=help_text)
        q.add_argument("--example", metavar="ID", help="take input, kernel, stride and padding from a worked "
                       "example of the catalogue (e.g. halmstad-x-kernel-nine-steps)")
        q.add_argument("--input", metavar="M", help="the input: numbers, a .txt/.npy file")
        if kind == "conv":
            q.add_argument("--kernel", metavar="M", help="the kernel: numbers, a .txt/.npy file or a kernel name")
            q.add_argument("--bias", type=float, help="added to every output (default 0)")
            q.add_argument("--compact", action="store_true",
                           help="write the products' values, zeros left out: -3 + 1 - 2 + 6 - 1 + 1 = 2")
            q.add_argument("--figure", metavar="PNG", help="also draw the step given by --at (default the first)")
        else:
            q.add_argument("--size", metavar="K", help="pooling window, e.g. 2 or 2,3")
            q.add_argument("--mode", choices=["max", "avg"], default="max")
            q.set_defaults(compact=False, figure=None)
        q.add_argument("--stride", metavar="S", help="int or rows,cols (default 1 for conv, the window for pool)")
        q.add_argument("--padding", metavar="P", help="int, rows,cols, or valid/same/full (conv)")
        q.add_argument("--at", metavar="I,J", help="only the output at row I, column J")
        q.add_argument("--latex", action="store_true", help="LaTeX display maths instead of text")
        q.add_argument("--cdot", action="store_true", help="write products with a dot (· or \\cdot) instead of x")
        q.set_defaults(func=explain)
