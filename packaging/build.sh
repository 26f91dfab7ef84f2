#!/bin/sh
# Builds the field packages into packaging/dist/ (ignored by git):
#   edgerunner_VERSION_amd64.deb, edgerunner_VERSION_arm64.deb   Debian 12 / Raspberry Pi OS bookworm
#   edgerunner_VERSION_amd64.tar.gz, edgerunner_VERSION_arm64.tar.gz   the same tree, for other distributions
# Each is a self-contained .NET publish for its RID (no .NET on the device, no Windows or foreign-RID
# native files), laid out as /usr/lib/edgerunner, /usr/bin/edgerunner, /etc/edgerunner/config.json
# (conffile), /usr/share/edgerunner/models, the systemd unit, sysusers.d and tmpfiles.d files, docs.
# Maintainer scripts come from debhelper (dh_installsystemd, dh_installsysusers, dh_installtmpfiles).
# Needs: the .NET SDK, dpkg-dev, debhelper; lintian when present checks each package.
# Usage: packaging/build.sh [amd64] [arm64]      (default: both)
#        R2R=false packaging/build.sh ...          without ReadyToRun (smaller, slower start; see docs/deployment.md)
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
dist="$repo/packaging/dist"
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -n 1)
arches=${*:-amd64 arm64}
r2r=${R2R:-true}
for tool in dotnet dpkg-buildpackage dh; do
    command -v "$tool" >/dev/null || { echo "packaging/build.sh: $tool is missing (apt-get install dpkg-dev debhelper; the .NET SDK)" >&2; exit 2; }
done
[ -n "$version" ] || { echo "packaging/build.sh: no <Version> in Directory.Build.props" >&2; exit 1; }

mkdir -p "$dist"
work=$(mktemp -d "$dist/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
# Everything the tools write to a temporary folder (dotnet, dpkg-buildpackage, lintian's MLDBM caches) goes
# into the work folder, removed on exit: a build leaves nothing in /tmp.
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
# Reproducible dates: the commit's, not the clock's.
SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

for arch in $arches; do
    case "$arch" in
        amd64) rid=linux-x64 ;;
        arm64) rid=linux-arm64 ;;
        *) echo "packaging/build.sh: unknown architecture '$arch' (amd64, arm64)" >&2; exit 64 ;;
    esac
    echo "== $arch ($rid)"
    src="$work/$arch/edgerunner-$version"
    stage="$src/stage"
    app="$stage/usr/lib/edgerunner"
    # --artifacts-path keeps this publish's obj/ and bin/ out of the developer's build folders.
    dotnet publish "$repo/service/EdgeRunner.Service" -c Release -r "$rid" --self-contained \
        -p:PublishReadyToRun="$r2r" --artifacts-path "$dist/.artifacts" -o "$app" --nologo -v quiet

    # Not shipped: debug symbols, XML API docs, the LTTng tracing hook (needs liblttng-ust, loaded only if present).
    find "$app" \( -name '*.pdb' -o -name '*.xml' -o -name 'libcoreclrtraceptprovider.so' \) -delete
    # Nothing for Windows or another CPU may ride along (ONNX Runtime's package adds onnxruntime.dll for AnyCPU).
    foreign=$(find "$app" -type f \( -name '*.dll' -o -name '*.so' -o -name '*.dylib' \) -exec file {} + | grep -v -e 'Mono/.Net assembly' -e "$(case $arch in amd64) echo x86-64 ;; arm64) echo aarch64 ;; esac)" || true)
    if [ -n "$foreign" ]; then
        echo "$foreign" >&2
        echo "packaging/build.sh: native files for another platform in the $arch build" >&2
        exit 1
    fi

    # Only the app host (and the runtime's crash dumper) are executables; publish marks every file executable.
    find "$app" -type f -exec chmod 0644 {} +
    chmod 0755 "$app/edgerunner" "$app/createdump"

    # Models in /usr/share; the built-in configuration is the conffile, so a bare `edgerunner status`
    # or `edgerunner check-config` reads what the service runs.
    mkdir -p "$stage/usr/share/edgerunner/models" "$stage/etc/edgerunner" "$stage/usr/bin"
    for model in "$app"/models/bundled/*/; do
        name=$(basename "$model")
        mkdir -p "$stage/usr/share/edgerunner/models/$name"
        for file in "$model"*; do
            case "$file" in *.fp32.onnx) ;; *) install -m 0644 "$file" "$stage/usr/share/edgerunner/models/$name/" ;; esac
        done
    done
    rm -rf "$app/models"
    install -m 0644 "$repo/packaging/config.json" "$stage/etc/edgerunner/config.json"
    rm -f "$app/appsettings.json"
    ln -s ../../../etc/edgerunner/config.json "$app/appsettings.json"
    ln -s ../lib/edgerunner/edgerunner "$stage/usr/bin/edgerunner"

    cp -r "$repo/packaging/debian" "$src/debian"
    cp "$repo/systemd/edgerunner.service" "$src/debian/edgerunner.service"
    cp "$repo/systemd/edgerunner.sysusers" "$src/debian/edgerunner.sysusers"
    cp "$repo/systemd/edgerunner.tmpfiles" "$src/debian/edgerunner.tmpfiles"
    # The operator's reference: README plus the pages it links (configuration, cameras, sensors, models, MQTT...).
    cp "$repo/README.md" "$repo/packaging/edgerunner.1" "$src/"
    printf 'README.md\n' >"$src/debian/edgerunner.docs"
    for page in deployment configuration cameras sensors models model-manifest mqtt store-and-forward payloads execution-providers metrics; do
        if [ -f "$repo/docs/$page.md" ]; then
            cp "$repo/docs/$page.md" "$src/"
            printf '%s.md\n' "$page" >>"$src/debian/edgerunner.docs"
        fi
    done
    {
        echo "edgerunner ($version) unstable; urgency=medium"
        echo
        echo "  * Release $version (commit $commit)."
        echo
        echo " -- EdgeRunner maintainers <edgerunner@example.org>  $(date -R -u -d "@$SOURCE_DATE_EPOCH")"
    } >"$src/debian/changelog"

    (cd "$src" && dpkg-buildpackage -b -us -uc -a"$arch" -d >"$work/$arch/dpkg-buildpackage.log" 2>&1) || {
        cat "$work/$arch/dpkg-buildpackage.log" >&2
        exit 1
    }
    deb="$dist/edgerunner_${version}_$arch.deb"
    cp "$work/$arch/edgerunner_${version}_$arch.deb" "$deb"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        -C "$src/debian/edgerunner" --exclude=./DEBIAN -czf "$dist/edgerunner_${version}_$arch.tar.gz" .
    echo "$deb: $(du -k "$deb" | cut -f1) KiB, installed $(dpkg-deb -f "$deb" Installed-Size) KiB"
    if command -v lintian >/dev/null; then
        # Errors fail the build; the accepted warnings are overridden, each with its reason (debian/*.lintian-overrides).
        lintian --fail-on error "$deb"
    fi
done
