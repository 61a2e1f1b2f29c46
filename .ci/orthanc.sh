# Sourced by .ci/run: a throwaway Orthanc with its DICOMweb plugin on loopback for the `--stow` tests.
# Installs Debian's orthanc and orthanc-dicomweb when missing, starts Orthanc on a free HTTP port with a
# temporary config and storage (DICOM port off, no remote access, no authentication), exports
# RADLAB_ORTHANC_URL (the DICOMweb root) and RADLAB_ORTHANC_TESTS=required, and stops Orthanc and deletes
# its folder when the calling shell exits (after whatever the EXIT trap did before, postgres.sh's).

orthanc_plugin() {
    ls /usr/share/orthanc/plugins/libOrthancDicomWeb.so /usr/lib/orthanc/libOrthancDicomWeb.so* 2>/dev/null | head -1
}

if ! command -v Orthanc >/dev/null 2>&1 || [ -z "$(orthanc_plugin)" ]; then
    echo "installing Debian's orthanc and orthanc-dicomweb (the --stow tests store results on it)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q orthanc orthanc-dicomweb >/tmp/radlab-ci-apt-orthanc.log 2>&1 \
        || { $sudo apt-get update -q >>/tmp/radlab-ci-apt-orthanc.log 2>&1 \
             && $sudo apt-get install -y -q orthanc orthanc-dicomweb >>/tmp/radlab-ci-apt-orthanc.log 2>&1; } \
        || { tail -20 /tmp/radlab-ci-apt-orthanc.log; exit 1; }
fi

ORTHANC_DIR="$(mktemp -d /tmp/radlab-ci-orthanc.XXXXXX)"
ORTHANC_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$ORTHANC_DIR/orthanc.json" <<EOF
{
  "Name": "radlab-ci",
  "StorageDirectory": "$ORTHANC_DIR/storage",
  "IndexDirectory": "$ORTHANC_DIR/storage",
  "HttpPort": $ORTHANC_PORT,
  "DicomServerEnabled": false,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "HttpsVerifyPeers": false,
  "Plugins": ["$(orthanc_plugin)"],
  "DicomWeb": {"Enable": true, "Root": "/dicom-web/"}
}
EOF
# Orthanc binds every interface; RemoteAccessAllowed=false makes it answer loopback clients only.
Orthanc "$ORTHANC_DIR/orthanc.json" >"$ORTHANC_DIR/orthanc.log" 2>&1 &
ORTHANC_PID=$!

stop_orthanc() {
    kill "$ORTHANC_PID" 2>/dev/null && wait "$ORTHANC_PID" 2>/dev/null
    rm -rf "$ORTHANC_DIR"
}
# Chain onto the EXIT trap already set (postgres.sh's) rather than replace it.
ORTHANC_PREVIOUS_TRAP="$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")"
trap "stop_orthanc; ${ORTHANC_PREVIOUS_TRAP:-:}" EXIT

orthanc_answers() {  # python3 rather than curl, which a minimal image may lack
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" >/dev/null 2>&1
}
for _ in $(seq 1 60); do
    orthanc_answers "http://127.0.0.1:$ORTHANC_PORT/system" && break
    kill -0 "$ORTHANC_PID" 2>/dev/null || { cat "$ORTHANC_DIR/orthanc.log"; exit 1; }
    sleep 0.5
done
orthanc_answers "http://127.0.0.1:$ORTHANC_PORT/dicom-web/studies" \
    || { echo "Orthanc on 127.0.0.1:$ORTHANC_PORT does not answer DICOMweb"; tail -20 "$ORTHANC_DIR/orthanc.log"; exit 1; }

export RADLAB_ORTHANC_URL="http://127.0.0.1:$ORTHANC_PORT/dicom-web"
export RADLAB_ORTHANC_TESTS=required
echo "Orthanc $(Orthanc --version 2>/dev/null | awk 'NR == 1 {print $2}') with DICOMweb on 127.0.0.1:$ORTHANC_PORT for the tests"
