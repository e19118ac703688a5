"""Rewrites that hand ONNX Runtime the layer norms and GELUs in forms it fuses.

Keras's `LayerNormalization` reaches TensorFlow as moments and `rsqrt`
(`x * rsqrt(var + eps) * gamma + (-mean * rsqrt(var + eps) * gamma + beta)`),
which tf2onnx exports as about twelve element-wise nodes that ONNX Runtime
cannot fuse; grappler turns the exact GELU's `x / √2` into `x * (1/√2)` and
tf2onnx its constants into shape (1, 1, 1, 1), a form ONNX Runtime's `Gelu`
fusion does not match. Together they were a fifth or more of SegFormer's ONNX
Runtime kernel time (docs/onnx_profile.md). `fuse_layer_norms` is a tf2onnx
rewriter: it runs before tf2onnx's transpose optimiser, while tensors are
still (..., channels), and writes each layer norm over the last axis as one ONNX
`LayerNormalization` (opset 17). `write_gelus_as_onnx_runtime_fuses_them`
edits the converted model so ONNX Runtime fuses each GELU into `Gelu` when it
loads the file. Any other pattern is left as it was; `export_onnx` checks the
result against Keras.
"""

import math

import numpy as np


def _producer(node, index):
    """The node that makes input `index` of `node`, or None."""
    return node.inputs[index] if index < len(node.input) else None


def _match_pair(node, op_type):
    """(node's input of `op_type`, the other input) for a two-input node, or (None, None)."""
    for index in (0, 1):
        candidate = _producer(node, index)
        if candidate is not None and candidate.type == op_type:
            return candidate, _producer(node, 1 - index)
    return None, None


def _const_value(node):
    """The value of a Const node, else None."""
    return node.get_tensor_value(as_list=False) if node is not None and node.is_const() else None


def _last_axis_mean(node, rank):
    """Whether `node` is a keepdims Mean over the last axis only."""
    if node is None or node.type != "Mean" or not node.get_attr_value("keep_dims", False):
        return False
    axes = _const_value(node.inputs[1])
    return axes is not None and [int(a) % rank for a in np.ravel(axes)] == [rank - 1]


def _match_layer_norm(g, add):
    """(input name, gamma, beta or None, epsilon, its nodes) of the layer norm ending at `add`, or None."""
    if add.type not in ("Add", "AddV2"):
        return None
    scaled, res = _producer(add, 0), _producer(add, 1)
    for first, second in ((scaled, res), (res, scaled)):
        beta = None
        if first is None or second is None or first.type != "Mul":
            continue
        if second.type in ("Add", "AddV2"):  # -mean * inv + beta
            mul_mean, beta_node = _match_pair(second, "Mul")
            beta = _const_value(beta_node)
            if beta is None:
                continue
            shift = [second, mul_mean]
        else:
            mul_mean, shift = second, [second]
        if mul_mean is None or mul_mean.type != "Mul":
            continue
        neg, inv = _match_pair(mul_mean, "Neg")
        if neg is None or inv is None or inv.type != "Mul" or inv.name not in (n.name for n in first.inputs):
            continue
        x_name = first.input[1] if first.input[0] == inv.output[0] else first.input[0]
        rank = g.get_rank(x_name)
        mean = neg.inputs[0]
        if rank is None or mean.input[0] != x_name or not _last_axis_mean(mean, rank):
            continue
        rsqrt, gamma_node = _match_pair(inv, "Rsqrt")
        gamma = _const_value(gamma_node)
        if rsqrt is None or gamma is None:
            continue
        plus_eps, eps_node = (None, None)
        if rsqrt.inputs[0].type in ("Add", "AddV2"):
            plus_eps, eps_node = _match_pair(rsqrt.inputs[0], "Mean")
        epsilon = _const_value(eps_node)
        if plus_eps is None or epsilon is None or np.size(epsilon) != 1 or not _last_axis_mean(plus_eps, rank):
            continue
        squared = plus_eps.inputs[0]
        if squared.type != "SquaredDifference" or squared.input[0] != x_name:
            continue
        centre, passes = squared.inputs[1], []
        while centre.type in ("StopGradient", "Identity"):
            passes.append(centre)
            centre = centre.inputs[0]
        if centre.name != mean.name:
            continue
        nodes = [add, first, *shift, neg, inv, rsqrt, rsqrt.inputs[0], plus_eps, squared, *passes, mean]
        return x_name, gamma, beta, float(np.ravel(epsilon)[0]), nodes
    return None


def fuse_layer_norms(g, ops):
    """tf2onnx rewriter: Keras's decomposed layer norm over the last axis -> ONNX LayerNormalization."""
    import onnx

    if g.opset < 17:
        return ops
    for add in list(ops):
        if g.get_node_by_name(add.name) is None:
            continue
        match = _match_layer_norm(g, add)
        if match is None:
            continue
        x_name, gamma, beta, epsilon, nodes = match
        channels = g.get_shape(x_name)[-1]
        if g.get_dtype(x_name) != onnx.TensorProto.FLOAT or channels is None or channels < 1:
            continue
        if gamma.size != channels or (beta is not None and beta.size != channels):
            continue
        if not g.is_safe_to_remove_nodes(nodes, outputs_to_ignore=[add.output[0]]):
            continue
        gamma = gamma.astype("float32").reshape(channels)
        beta = np.zeros_like(gamma) if beta is None else beta.astype("float32").reshape(channels)
        scale = g.make_const(f"{add.name}/ln_scale", gamma).output[0]
        bias = g.make_const(f"{add.name}/ln_bias", beta).output[0]
        norm = g.make_node(
            "LayerNormalization", [x_name, scale, bias], attr={"axis": -1, "epsilon": epsilon},
            shapes=[g.get_shape(add.output[0])], dtypes=[g.get_dtype(add.output[0])],
        )
        ops.append(norm)
        g.replace_all_inputs(add.output[0], norm.output[0], ops=ops)
        for node in nodes:
            g.remove_node(node.name)
    live = {op.name: op for op in ops if g.get_node_by_name(op.name) is not None}  # make_node may have added it
    return list(live.values())


def write_gelus_as_onnx_runtime_fuses_them(proto):
    """Rewrite exact GELUs in an ONNX model into the form ONNX Runtime fuses into one `Gelu`.

    That form is `0.5 * x * (1 + Erf(x / √2))` with scalar constants; tf2onnx
    leaves `x * (1/√2)` and constants of shape (1, 1, 1, 1). Runs on the
    converted model, after tf2onnx's transpose optimiser, which would otherwise
    leave the division and `0.5 * x` on different transposes of `x`.
    """
    from onnx import helper, numpy_helper

    graph = proto.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    scalars, replaced = {}, set()

    def scalar(value):
        name = f"gdcld_zoo/gelu_{value:.6g}"
        if name not in scalars:
            scalars[name] = numpy_helper.from_array(np.array(value, "float32"), name)
            graph.initializer.append(scalars[name])
        return name

    def constant_input(node, value):
        """Index of the single-element constant input of `node` equal to `value`, else None."""
        for index, name in enumerate(node.input):
            array = constants.get(name)
            if array is not None and array.size == 1 and np.isclose(float(array.ravel()[0]), value, rtol=1e-6):
                return index
        return None

    for erf in [node for node in graph.node if node.op_type == "Erf"]:
        scaled = producers.get(erf.input[0])
        if scaled is None or scaled.op_type != "Mul" or len(consumers[scaled.output[0]]) != 1:
            continue
        index = constant_input(scaled, 1 / math.sqrt(2))
        if index is None:
            continue
        x = scaled.input[1 - index]
        replaced.add(scaled.input[index])
        divide = helper.make_node("Div", [x, scalar(math.sqrt(2))], list(scaled.output), name=f"{scaled.name}/div")
        graph.node.insert(list(graph.node).index(scaled), divide)
        graph.node.remove(scaled)
        for node, value in [(n, 1.0) for n in consumers[erf.output[0]] if n.op_type == "Add"] + [
            (n, 0.5) for n in consumers[x] if n.op_type == "Mul"
        ]:
            index = constant_input(node, value)
            if index is not None:
                replaced.add(node.input[index])
                node.input[index] = scalar(value)
    used = {name for node in graph.node for name in node.input}
    for unused in [init for init in graph.initializer if init.name in replaced and init.name not in used]:
        graph.initializer.remove(unused)
    return proto
