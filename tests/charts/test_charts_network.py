"""The Run detail network map: readable for deep nets, one arc per skip-bridged block, U-Nets as a U."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from skipweb.charts.network import MAX_ROWS, _arcs, _columns, _long_skips, _unet, block_of, network_map
from skipweb.models import get_model


@dataclass
class Layer:
    idx: int
    name: str
    skip: bool
    params: int


def layers_of(family: str, depth: int, **opts) -> list[Layer]:
    pairs = get_model(family, depth=depth, **opts).probe_modules()
    return [Layer(i, p.name, p.skip, p.params) for i, (p, _) in enumerate(pairs)]


def test_resnet56_is_readable_with_one_arc_per_block():
    layers = layers_of("resnet", 56)
    boxes, headers = _columns(layers)
    assert len(boxes) == 56 and {b.col for b in boxes} == {0, 1, 2}  # three stage columns, not a strip
    assert max(b.row for b in boxes) < MAX_ROWS
    arcs = _arcs(boxes, "resnet", "A")
    assert len(arcs) == 27  # 3 stages × 9 basic blocks
    assert [a.projection for a in arcs if a.projection] == ["zero-pad", "zero-pad"]  # layer2.0, layer3.0
    fig = network_map(layers, "resnet", "A")
    assert 400 <= fig.layout.height <= 800  # ~24 px a row: labels at 12 px do not overlap
    fonts = [t.textfont.size for t in fig.data if t.mode == "text"]
    assert fonts and min(fonts) >= 12
    assert sum(s.type == "path" for s in fig.layout.shapes) == 27


def test_a_projection_shortcut_is_its_own_layer_in_the_arc():
    layers = layers_of("resnet", 20, shortcut="B")
    arcs = _arcs(_columns(layers)[0], "resnet", "B")
    assert len(arcs) == 9 and [a.projection for a in arcs if a.projection] == ["1×1 conv", "1×1 conv"]
    assert block_of("layer2.0.shortcut.0") == block_of("layer2.0.conv1") == "layer2.0"


@pytest.mark.parametrize(("family", "depth"), [("resnet", 110), ("mlp", 64)])
def test_long_stages_wrap_and_every_block_keeps_its_arc(family, depth):
    layers = layers_of(family, depth)
    boxes, headers = _columns(layers)
    per_col: dict[int, int] = {}
    for b in boxes:
        per_col[b.col] = per_col.get(b.col, 0) + 1
    assert max(b.row for b in boxes) < MAX_ROWS and len(per_col) >= 4
    assert any("(cont.)" in t for _, _, t in headers)
    blocks = {block_of(b.name) for b in boxes if b.skip}
    arcs = _arcs(boxes, family, "A")
    assert len(blocks) <= len(arcs) <= len(blocks) + len(per_col)  # a wrapped block gets one piece a column


def test_no_skip_net_has_no_arcs():
    layers = layers_of("plain", 56)
    assert _arcs(_columns(layers)[0], "plain", "A") == []
    assert not any(s.type == "path" for s in network_map(layers, "plain").layout.shapes)


def test_unet_is_a_u_with_a_long_skip_per_level():
    layers = layers_of("unet", 3)
    boxes, _ = _unet(layers)
    long = _long_skips(boxes)
    assert [(s.name.split(".")[0], d.name.split(".")[:2]) for s, d in long] == [
        ("downs", ["ups", "0"]), ("downs", ["ups", "1"]), ("inc", ["ups", "2"])]
    for src, dst in long:  # each joins the decoder stage at its own level: same height in the U
        assert src.col < dst.col and abs(src.row - dst.row) <= 3
    deepest = max(b.row for b in boxes if b.name.startswith("downs.2"))
    assert deepest > max(b.row for b in boxes if b.name.startswith("inc"))
    no_skip = layers_of("unet", 3, skip="none")
    assert _long_skips(_unet(no_skip)[0]) == []
