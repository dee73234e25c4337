"""The one layer every fixture image shares: busybox plus NVIDIA's entrypoint and banner scripts.

The scripts reproduce what NVIDIA's ``nvidia_entrypoint.sh`` and ``entrypoint.d/`` print
(shared/reference/cuda-ecosystem-facts.md §1.3), so a fixture image started without a GPU shows
the same CUDA banner, driver warning and, with ``NVIDIA_CUDA_END_OF_LIFE`` set, the same
deprecation notice as the real one.
"""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from pathlib import Path

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

ENTRYPOINT = """#!/bin/sh
# Fixture copy of NVIDIA's nvidia_entrypoint.sh: source *.sh and print *.txt in order, then exec.
for _file in $(ls /opt/nvidia/entrypoint.d/ | sort); do
  case "${_file}" in
    *.txt) cat "/opt/nvidia/entrypoint.d/${_file}" ;;
    *.sh) . "/opt/nvidia/entrypoint.d/${_file}" ;;
  esac
done
echo
if [ $# -eq 0 ]; then exec /bin/sh; fi
exec "$@"
"""

BANNER = """_prodname="${NVIDIA_PRODUCT_NAME:-CUDA}"
_line=$(echo "== ${_prodname} ==" | sed 's/./=/g')
echo
echo "${_line}"
echo "== ${_prodname} =="
echo "${_line}"
echo
echo "CUDA Version ${CUDA_VERSION}"
echo
"""

COPYRIGHT = """Container image Copyright (c) 2016-2023, NVIDIA CORPORATION & AFFILIATES. All rights reserved.
"""

LICENSE = """This container image and its contents are governed by the NVIDIA Deep Learning Container License.
By pulling and using the container, you accept the terms and conditions of this license:
https://developer.nvidia.com/ngc/nvidia-deep-learning-container-license
"""

DRIVER_CHECK = """if [ ! -e /proc/driver/nvidia/version ]; then
  echo
  echo "WARNING: The NVIDIA Driver was not detected.  GPU functionality will not be available."
  echo "   Use the NVIDIA Container Toolkit to start this container with GPU support; see"
  echo "   https://docs.nvidia.com/datacenter/cloud-native/ ."
  export NVIDIA_CPU_ONLY=1
fi
"""

DEPRECATED = """print_deprecation_notice() {
  echo
  echo "*************************"
  echo "** DEPRECATION NOTICE! **"
  echo "*************************"
  echo "THIS IMAGE IS DEPRECATED and is scheduled for DELETION."
  echo "    https://gitlab.com/nvidia/container-images/cuda/blob/master/doc/support-policy.md"
}

if [ -n "${NVIDIA_CUDA_END_OF_LIFE}" ]; then
  print_deprecation_notice
fi
"""

APPLETS = ("sh", "ls", "sort", "cat", "echo", "sed", "sleep", "env", "true", "false", "wget", "id")


def busybox_path() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        if Path(candidate).exists():
            return Path(candidate)
    found = shutil.which("busybox")
    if found:
        return Path(found)
    raise FileNotFoundError("busybox not found: install Debian's busybox-static (scripts/test does)")


def _add(
    tar: tarfile.TarFile,
    name: str,
    data: bytes | None = None,
    mode: int = 0o644,
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 1704067200  # fixed: the same bytes, hence the same digest, every run
    info.mode = mode
    info.type = kind
    info.linkname = link
    info.uname = info.gname = "root"
    if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def build_layer() -> tuple[bytes, str]:
    """(gzipped layer, diff_id): a tiny runnable rootfs with NVIDIA's entrypoint scripts."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in (
            "bin",
            "tmp",
            "opt",
            "opt/nvidia",
            "opt/nvidia/entrypoint.d",
            "proc",
            "etc",
        ):
            _add(tar, directory, mode=0o755, kind=tarfile.DIRTYPE)
        _add(tar, "bin/busybox", busybox_path().read_bytes(), 0o755)
        for applet in APPLETS:
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "opt/nvidia/nvidia_entrypoint.sh", ENTRYPOINT.encode(), 0o755)
        parts = {
            "10-banner.sh": BANNER,
            "15-container-copyright.txt": COPYRIGHT,
            "30-container-license.txt": LICENSE,
            "50-gpu-driver-check.sh": DRIVER_CHECK,
            "90-deprecated-image.sh": DEPRECATED,
        }
        for name, body in parts.items():
            _add(tar, f"opt/nvidia/entrypoint.d/{name}", body.encode(), 0o644)
    tar_bytes = raw.getvalue()
    import hashlib

    diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    return gzip.compress(tar_bytes, mtime=0), diff_id
