"""Step plugins: what happens inside HSMs and AWS. Each knows nothing about the DAG."""


def builtin_plugins():
    from .aws_pca_steps import BUILTIN as AWS_PCA
    from .crl_step import BUILTIN as CRL
    from .custody_steps import BUILTIN as CUSTODY
    from .hsm_steps import BUILTIN as HSM
    from .key_export import BUILTIN as EXPORT

    return HSM + AWS_PCA + CUSTODY + CRL + EXPORT
