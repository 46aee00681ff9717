"""An example op plugin: `layer_scale`, a learnable scale per channel (CaiT's LayerScale; timm's LayerScale2d,
whose parameter is `gamma`), added to archspec without changing archspec. Installed, it declares in its
pyproject.toml:

    [project.entry-points."archspec.ops"]
    layer_scale = "archspec_layer_scale.ops"
    [project.entry-points."archspec.lowerings"]
    layer_scale = "archspec_layer_scale.lowering"
"""
