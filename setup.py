"""Builds poisonkit._C (the C++ ops always, the CUDA ops when a CUDA toolkit and a CUDA
build of torch are present; POISONKIT_CUDA=0|1|auto, default auto) and the DALI plugin
libpoisonkit_dali.so (CMake, into build/dali; packed into the wheel as
poisonkit/dali/lib/; POISONKIT_DALI=0|1|auto, default auto: when nvidia.dali is
importable). Dependencies and extras come from requirements.txt (the one place versions
are pinned); metadata, version and the `poisonkit` command from pyproject.toml."""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

# torch guesses /usr/local when CUDA_HOME is unset; the conventional toolkit is here.
if "CUDA_HOME" not in os.environ and os.path.exists("/usr/local/cuda/bin/nvcc"):
    os.environ["CUDA_HOME"] = "/usr/local/cuda"
# Turing (T4, sm_75) to Hopper (sm_90) as machine code, plus PTX for newer cards; an older
# card fails with the hint of csrc/torch/checks.h (check_launch).
os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "7.5;8.0;8.6;8.9;9.0+PTX")

import torch  # noqa: E402
from setuptools import Command, setup  # noqa: E402
from torch.utils import cpp_extension  # noqa: E402

ROOT = Path(__file__).resolve().parent
DALI_BUILD = ROOT / "build" / "dali"
PLUGIN = "libpoisonkit_dali.so"
EXTRAS = ("dali", "bench", "eval", "attribution", "editing", "test")


def requirements() -> dict[str, list[str]]:
    """requirements.txt's pins by group: 'pin  # group group ...' lines."""
    groups: dict[str, list[str]] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        pin, _, tags = line.partition("#")
        if pin.strip():
            if not tags.split():
                raise ValueError(f"requirements.txt: {line!r} names no group")
            for group in tags.split():
                groups.setdefault(group, []).append(pin.strip())
    return groups


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


def _switch(name: str) -> str:
    """An on/off/auto environment switch, as 'ON', 'OFF' or 'AUTO'."""
    mode = os.environ.get(name, "auto").lower()
    for value, spellings in (("ON", ("1", "on", "true")), ("OFF", ("0", "off", "false")),
                             ("AUTO", ("auto",))):
        if mode in spellings:
            return value
    raise RuntimeError(f"{name} must be 0, 1 or auto, got {mode!r}")


def _dali_importable() -> bool:
    return subprocess.run([sys.executable, "-c", "import nvidia.dali"],
                          capture_output=True).returncode == 0


def _cmake() -> str:
    """The pinned cmake package's binary (a build requirement), else cmake on PATH."""
    try:
        import cmake
        return str(Path(cmake.CMAKE_BIN_DIR) / "cmake")
    except ImportError:
        found = shutil.which("cmake")
        if found is None:
            raise RuntimeError("the DALI plugin needs CMake: pip install -r requirements.txt")
        return found


class build_dali(Command):
    """Builds the DALI plugin with CMake into build/dali (incremental)."""
    description = "build the DALI plugin libpoisonkit_dali.so"
    user_options = []

    def initialize_options(self):
        self.plugin = None

    def finalize_options(self):
        pass

    def run(self):
        mode = _switch("POISONKIT_DALI")
        if mode == "OFF" or (mode == "AUTO" and not _dali_importable()):
            if mode == "AUTO":
                print("poisonkit: nvidia.dali is not importable: building without the DALI "
                      "plugin (POISONKIT_DALI=1 makes this an error)", file=sys.stderr)
            return
        cmake = _cmake()
        subprocess.run([cmake, "-S", str(ROOT), "-B", str(DALI_BUILD),
                        f"-DPython_EXECUTABLE={sys.executable}",
                        f"-DPOISONKIT_CUDA={_switch('POISONKIT_CUDA')}"], check=True)
        subprocess.run([cmake, "--build", str(DALI_BUILD), "-j",
                        os.environ.get("MAX_JOBS", str(os.cpu_count() or 1))], check=True)
        self.plugin = DALI_BUILD / PLUGIN


class build_ext(cpp_extension.BuildExtension):
    """poisonkit._C, then the DALI plugin, copied into the package for a wheel (an in-place
    or editable build finds it in build/dali)."""

    def finalize_options(self):
        super().finalize_options()
        if self.editable_mode:  # pip install -e builds in a new temporary folder each time:
            # keep the usual one, so ninja recompiles only what changed
            self.build_temp = str(Path("build") / f"temp.{sysconfig.get_platform()}-"
                                                  f"{sys.implementation.cache_tag}")

    def run(self):
        super().run()
        self.run_command("build_dali")
        plugin = self.get_finalized_command("build_dali").plugin
        if plugin is not None and not (self.inplace or self.editable_mode):
            target = Path(self.build_lib) / "poisonkit" / "dali" / "lib"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(plugin, target / PLUGIN)


pins = requirements()
setup(
    install_requires=pins["runtime"],
    extras_require={name: pins[name] for name in EXTRAS},
    ext_modules=[extension()],
    cmdclass={"build_ext": build_ext, "build_dali": build_dali},
)
