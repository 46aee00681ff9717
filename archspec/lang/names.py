"""Names a node may not have, and the form of an item's name. Each item of a network becomes a module (and its
output a value in the generated forward) of a torch.fx GraphModule, and each item of a block a child module of
the block's container: a name that is already an attribute of torch's `nn.Module` or `fx.GraphModule`
(`forward`, `training`, `to`, `eval`, `state_dict`, `graph`, `code`, `meta`, ...) or of archspec's model
(`archspec`), or a Python keyword (`def`, `class`, `None`, `lambda`, and `self`), would collide there. The
language holds the list (it never imports torch); `tests/compiler/test_lower.py` checks it against the installed
torch, so it cannot fall behind.

An item's name is parts joined by `.` (`conv1`, `0`, `convs.0`), each an identifier or a number: a part becomes one
level of the module tree (`convs.0` is module `0` of a container `convs`, as torch's `nn.ModuleList` names it), so
each part must be free of the words above.
"""

from __future__ import annotations

import keyword
import re

from archspec.lang.schema.build import NAME_PART, RESERVED_NAMES

MODULE_ATTRIBUTES = frozenset("""
    T_destination _apply _backward_hooks _backward_pre_hooks _boxed_call _buffers _call_impl _code
    _compiled_call_impl _create_node_hooks _deepcopy_hooks _deepcopy_init _erase_node_hooks _forward_hooks
    _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks _forward_pre_hooks_with_kwargs
    _get_backward_hooks _get_backward_pre_hooks _get_name _graph _is_full_backward_hook _lineno_map
    _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
    _maybe_warn_non_full_backward_hook _modules _named_members _non_persistent_buffers_set _parameters
    _prologue_start _recompile_submodules _register_create_node_hook _register_deepcopy_hook
    _register_erase_node_hook _register_load_state_dict_pre_hook _register_replace_node_hook
    _register_state_dict_hook _replace_hooks _replicate_for_data_parallel _save_to_state_dict _set_replace_hook
    _slow_forward _state_dict_hooks _state_dict_pre_hooks _tracer_cls _tracer_extras
    _unregister_create_node_hook _unregister_deepcopy_hook _unregister_erase_node_hook
    _unregister_replace_node_hook _version _wrapped_call_impl add_module add_submodule apply bfloat16 buffers
    call_super_init children code compile cpu cuda delete_all_unused_submodules delete_submodule double
    dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule graph half
    ipu load_state_dict meta modules mtia named_buffers named_children named_modules named_parameters parameters
    print_readable recompile register_backward_hook register_buffer register_forward_hook
    register_forward_pre_hook register_full_backward_hook register_full_backward_pre_hook
    register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule
    shape_env share_memory state_dict to to_empty to_folder train training type xpu zero_grad
""".split()) | {"archspec", "weights_source"}

PYTHON_WORDS = frozenset(keyword.kwlist) | {"self"}


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a node, or None."""
    if name in PYTHON_WORDS:
        return "a Python keyword (the generated forward could not name its value)"
    if name in MODULE_ATTRIBUTES:
        return "an attribute of torch's nn.Module or fx.GraphModule (its module would collide with it)"
    return None


_PART = re.compile(NAME_PART)


def item_name_problem(name: str) -> tuple[str, str] | None:
    """Why `name` (an item's name, parts joined by `.`) cannot name a node, and the fix to suggest; None if it can."""
    parts = name.split(".")
    for part in parts:
        if not _PART.fullmatch(part):
            return ("it is not an identifier or a number" if len(parts) == 1 else
                    f"its part `{part}` is not an identifier or a number",
                    "write letters, digits and `_`, or a number, in each part (parts are joined by `.`: `convs.0`)")
        why = "a reserved word" if part in RESERVED_NAMES else name_problem(part)
        if why:
            return (f"it is {why}" if len(parts) == 1 else f"its part `{part}` is {why}",
                    f"choose another name (e.g. `{name}_1`)" if len(parts) == 1 else
                    f"choose another name for `{part}` (e.g. `{part}_1`)")
    return None
