#!/usr/bin/env bash
# Builds the developer tools the project needs that PyPI does not ship (helm; vegeta and ghz, the
# HTTP and gRPC load generators of `make bench`; jaeger, the trace store and query API of
# `make run TRACING=1`) from the Go module proxy into
# .local/bin/, with every Go path (GOPATH, module cache, build cache) under .local/cache/go.
# promtool, which checks the chart's alert rules, is taken from Debian's `prometheus` package
# where apt-get exists (seconds, instead of a 5-minute Go build); elsewhere it is built.
# Idempotent: a tool already built at the pinned version (marker .local/bin/.<tool>.version)
# is skipped. Pinned versions keep the build deterministic even when another helm is on PATH.
# buf comes from PyPI (`buf-bin`, in the dev dependency group: .venv/bin/buf), not from here.
#
#   bash deploy/local/fetch-tools.sh            # helm
#   bash deploy/local/fetch-tools.sh promtool   # promtool (deploy/k8s-check.sh asks for it)
#   bash deploy/local/fetch-tools.sh vegeta ghz # the load generators (scripts/bench.sh asks for them)
#   bash deploy/local/fetch-tools.sh jaeger     # Jaeger v2 (scripts/run.sh asks for it with TRACING=1;
#                                               # never by `make test`: 12 min here, 2 shared cores)
set -euo pipefail

HELM_VERSION="v3.22.0"
VEGETA_VERSION="v12.13.0"
GHZ_VERSION="v0.93.0"
# promtool (`promtool check rules` / `promtool test rules` on the chart's PrometheusRule):
# Debian's `prometheus` package (bookworm: 2.42), only its promtool binary, extracted without
# installing the package; without apt-get, Prometheus v3.16.0 from the Go module proxy
# (github.com/prometheus/prometheus v0.316.0). The rules and their unit tests use nothing newer
# than 2.42 has (deploy/k8s-check.sh runs both).
PROMTOOL_VERSION="v0.316.0"
# Jaeger v2 (an OpenTelemetry Collector distribution: OTLP receiver, in-memory store, query API
# and UI server). Its go.mod has replace directives, so `go install pkg@version` refuses it: it
# is built as a tool of a throw-away module (`go get -tool`) instead.
JAEGER_VERSION="v1.76.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN_DIR="$ROOT/.local/bin"
GO_DIR="$ROOT/.local/cache/go"

die() { echo "fetch-tools.sh: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "the Go toolchain (go) is not on PATH; install Go >= 1.24"

export GOPATH="$GO_DIR"
export GOMODCACHE="$GO_DIR/mod"
export GOCACHE="$GO_DIR/build"
export GOBIN="$BIN_DIR"
export GOTOOLCHAIN=local        # never download another toolchain
export GOFLAGS="-buildvcs=false -trimpath -modcacherw"
export CGO_ENABLED=0
mkdir -p "$BIN_DIR" "$GOMODCACHE" "$GOCACHE"

# Serialise concurrent runs (e.g. make -j): both would write the same binaries.
exec 9>"$ROOT/.local/fetch-tools.lock"
flock -w 1800 9 || die "another fetch-tools.sh is still running (lock .local/fetch-tools.lock)"

is_current() { # tool version
    [[ -x "$BIN_DIR/$1" && -f "$BIN_DIR/.$1.version" && "$(cat "$BIN_DIR/.$1.version")" == "$2" ]]
}

build() { # tool version package [ldflags]
    local tool="$1" version="$2" pkg="$3" ldflags="${4:-}" started
    if is_current "$tool" "$version"; then
        echo "fetch-tools.sh: $tool $version already built ($BIN_DIR/$tool)"
        return 0
    fi
    echo "fetch-tools.sh: building $tool $version (first time, a few minutes)..."
    started=$SECONDS
    rm -f "$BIN_DIR/.$tool.version"
    go install -ldflags="-s -w $ldflags" "$pkg@$version" \
        || die "building $tool $version failed (go install $pkg@$version)"
    [[ -x "$BIN_DIR/$tool" ]] || die "go install did not produce $BIN_DIR/$tool"
    echo "$version" >"$BIN_DIR/.$tool.version"
    echo "fetch-tools.sh: built $tool $version in $((SECONDS - started)) s -> $BIN_DIR/$tool"
    built_any=1
}

build_jaeger() {
    if is_current jaeger "$JAEGER_VERSION"; then
        echo "fetch-tools.sh: jaeger $JAEGER_VERSION already built ($BIN_DIR/jaeger)"
        return 0
    fi
    echo "fetch-tools.sh: building jaeger $JAEGER_VERSION (first time, several minutes)..."
    local started=$SECONDS mod="$GO_DIR/jaeger-build"
    rm -rf "$mod" "$BIN_DIR/.jaeger.version"
    mkdir -p "$mod"
    (
        cd "$mod"
        go mod init ecomops.local/jaeger-build >/dev/null 2>&1
        go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION"
        go build -ldflags="-s -w" -o "$BIN_DIR/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
    ) || die "building jaeger $JAEGER_VERSION failed (go get -tool / go build in $mod)"
    rm -rf "$mod"
    echo "$JAEGER_VERSION" >"$BIN_DIR/.jaeger.version"
    echo "fetch-tools.sh: built jaeger $JAEGER_VERSION in $((SECONDS - started)) s -> $BIN_DIR/jaeger"
    built_any=1
}

helm_ldflags() {
    # What helm's own Makefile stamps in: its version, and the Kubernetes version that
    # `helm template` / `helm lint` assume (.Capabilities.KubeVersion), derived from the
    # k8s.io/client-go it is built with (v0.N.x -> Kubernetes 1.N). Without these a plain
    # `go install` reports a dev version and an old default KubeVersion.
    local gomod client_go minor
    gomod="$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" \
        | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [[ -f "$gomod" ]] || die "could not download helm.sh/helm/v3@$HELM_VERSION from the Go module proxy"
    client_go="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$gomod")"
    minor="$(echo "$client_go" | sed -n 's/^v0\.\([0-9][0-9]*\)\..*/\1/p')"
    local flags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    flags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    if [[ -n "$minor" ]]; then
        flags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
        flags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
        flags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
        flags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
    fi
    echo "$flags"
}

debian_promtool() {
    local candidate deb_dir
    candidate="$(apt-cache policy prometheus 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')"
    [[ -n "$candidate" && "$candidate" != "(none)" ]] \
        || die "Debian's package index has no 'prometheus' (run apt-get update, or build promtool from Go: PROMTOOL_FROM_GO=1)"
    if is_current promtool "debian-$candidate"; then
        echo "fetch-tools.sh: promtool (Debian prometheus $candidate) already there ($BIN_DIR/promtool)"
        return 0
    fi
    echo "fetch-tools.sh: taking promtool from Debian's prometheus $candidate..."
    deb_dir="$(mktemp -d)"
    # apt-get download needs no root; as root it warns that _apt cannot write the folder.
    (cd "$deb_dir" && apt-get download -q "prometheus=$candidate" >/dev/null 2>&1) \
        || { rm -rf "$deb_dir"; die "apt-get download prometheus=$candidate failed"; }
    dpkg-deb -x "$deb_dir"/prometheus_*.deb "$deb_dir/x"
    install -m 0755 "$deb_dir/x/usr/bin/promtool" "$BIN_DIR/promtool"
    rm -rf "$deb_dir"
    "$BIN_DIR/promtool" --version >/dev/null || die "the extracted promtool does not run"
    echo "debian-$candidate" >"$BIN_DIR/.promtool.version"
    echo "fetch-tools.sh: promtool $("$BIN_DIR/promtool" --version 2>&1 | head -1 | awk '{print $3}') -> $BIN_DIR/promtool"
}

tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=(helm)
built_any=""
for tool in "${tools[@]}"; do
    case "$tool" in
        helm)
            if is_current helm "$HELM_VERSION"; then
                build helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
            else
                echo "fetch-tools.sh: resolving helm $HELM_VERSION from the Go module proxy..."
                build helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "$(helm_ldflags)"
            fi
            ;;
        vegeta)
            build vegeta "$VEGETA_VERSION" github.com/tsenart/vegeta/v12 \
                "-X main.Version=$VEGETA_VERSION"
            ;;
        ghz)
            build ghz "$GHZ_VERSION" github.com/bojand/ghz/cmd/ghz "-X main.version=$GHZ_VERSION"
            ;;
        promtool)
            if [[ -z "${PROMTOOL_FROM_GO:-}" ]] && command -v apt-get >/dev/null 2>&1 \
                && command -v dpkg-deb >/dev/null 2>&1; then
                debian_promtool
                continue
            fi
            build promtool "$PROMTOOL_VERSION" github.com/prometheus/prometheus/cmd/promtool \
                "-X github.com/prometheus/common/version.Version=3.${PROMTOOL_VERSION#v0.3}"
            ;;
        jaeger) build_jaeger ;;
        *) die "unknown tool '$tool' (known: helm promtool vegeta ghz jaeger)" ;;
    esac
done

# The build cache (~1 GB for helm) only speeds up rebuilding the same versions, which the
# markers already skip; the module cache (downloads) is kept.
if [[ -n "$built_any" ]]; then
    go clean -cache
fi
