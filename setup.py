"""Builds poisonkit._C: the C++ ops always, the CUDA ops when a CUDA toolkit and a CUDA
build of torch are present. POISONKIT_CUDA=0|1|auto (default auto) decides."""
import glob
import os

# torch guesses /usr/local when CUDA_HOME is unset; the conventional toolkit is here.
if "CUDA_HOME" not in os.environ and os.path.exists("/usr/local/cuda/bin/nvcc"):
    os.environ["CUDA_HOME"] = "/usr/local/cuda"
# sm_80 (A100) and sm_90 (H100/H200); PTX for newer cards.
os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")

import torch  # noqa: E402
from setuptools import find_packages, setup  # noqa: E402
from torch.utils import cpp_extension  # noqa: E402


def want_cuda() -> bool:
    mode = os.environ.get("POISONKIT_CUDA", "auto").lower()
    available = torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None
    if mode in ("1", "on", "true"):
        if not available:
            raise RuntimeError("POISONKIT_CUDA=1 but no CUDA toolkit or CUDA build of torch found")
        return True
    if mode in ("0", "off", "false"):
        return False
    if mode != "auto":
        raise RuntimeError(f"POISONKIT_CUDA must be 0, 1 or auto, got {mode!r}")
    return available


def extension():
    with_cuda = want_cuda()
    sources = sorted(glob.glob("csrc/kernels/*.cpp") + glob.glob("csrc/torch/*.cpp"))
    if not with_cuda:
        sources = [s for s in sources if not s.endswith("_cuda.cpp")]
    # -fopenmp: at::parallel_for is inlined from ATen headers as an OpenMP region; without
    # the flag it silently runs on one thread.
    cxx = ["-O3", "-fvisibility=hidden", "-fopenmp"]
    nvcc = ["-O3", "--expt-relaxed-constexpr"]
    link = []
    # POISONKIT_SANITIZE=1 (`make sanitize`): AddressSanitizer + UndefinedBehaviorSanitizer.
    if os.environ.get("POISONKIT_SANITIZE") == "1":
        sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
        cxx += sanitize + ["-fno-omit-frame-pointer", "-g"]
        link += sanitize
    macros = []
    if with_cuda:
        sources += sorted(glob.glob("csrc/kernels/*.cu"))
        macros.append(("POISONKIT_WITH_CUDA", None))
        return cpp_extension.CUDAExtension(
            "poisonkit._C", sources, define_macros=macros,
            extra_compile_args={"cxx": cxx, "nvcc": nvcc}, extra_link_args=link)
    return cpp_extension.CppExtension(
        "poisonkit._C", sources, define_macros=macros, extra_compile_args={"cxx": cxx},
        extra_link_args=link)


setup(
    name="poisonkit",
    version="0.1.0",
    packages=find_packages(include=["poisonkit", "poisonkit.*"]),
    package_data={"poisonkit.poisons": ["data/*.json"]},  # published AR coefficient sets
    ext_modules=[extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension},
    entry_points={"console_scripts": ["poisonkit = poisonkit.cli:main"]},
    python_requires=">=3.10",
)
