#!/usr/bin/env bash
# Installs what tests/e2e/camera_servers.py needs to serve a real RTSP camera: GStreamer's RTSP
# server and its Python bindings from Debian, run with Debian's /usr/bin/python3 (not .venv's).
# Idempotent: installs only the packages that are missing. Run as root (or through sudo).
set -euo pipefail

PACKAGES=(
    gir1.2-gst-rtsp-server-1.0  # GstRtspServer typelib
    python3-gi                  # gi.repository for /usr/bin/python3
    gstreamer1.0-plugins-base   # videotestsrc, videoconvert
    gstreamer1.0-plugins-good   # rtph264pay
    gstreamer1.0-plugins-ugly   # x264enc
)

missing=()
for package in "${PACKAGES[@]}"; do
    # Not `dpkg -s | grep -q`: grep quitting early kills dpkg with SIGPIPE, which pipefail
    # would report as "missing".
    if [[ "$(dpkg -s "$package" 2>/dev/null)" != *"Status: install ok installed"* ]]; then
        missing+=("$package")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-rtsp: all packages present: ${PACKAGES[*]}"
else
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=(sudo)
    fi
    echo "install-rtsp: installing ${missing[*]}"
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Fail here, not in a test, when the bindings still cannot load.
/usr/bin/python3 -c 'import gi; gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer  # noqa: F401
Gst.init(None)
missing = [e for e in ("videotestsrc", "x264enc", "rtph264pay") if not Gst.ElementFactory.find(e)]
assert not missing, f"GStreamer elements missing: {missing}"'
echo "install-rtsp: ready"
