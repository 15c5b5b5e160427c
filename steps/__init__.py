"""Step plugins: what happens inside HSMs (and, later, AWS). Each knows nothing about the DAG."""


def builtin_plugins():
    from .hsm_steps import BUILTIN

    return BUILTIN
