"""Step plugins: what happens inside HSMs and AWS. Each knows nothing about the DAG."""


def builtin_plugins():
    from .aws_pca_steps import BUILTIN as AWS_PCA
    from .hsm_steps import BUILTIN as HSM

    return HSM + AWS_PCA
