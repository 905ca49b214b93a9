"""Profiles in plain words: what `mcpbox check` prints and `mcpbox profiles` lists."""

from __future__ import annotations

import os
from pathlib import Path

from mcpbox import paths
from mcpbox.profile import Catalog, LoadedProfile, Profile, Tools, expand_path, find, load
from mcpbox.trust import root as trust_root


def describe(loaded: LoadedProfile) -> list[str]:
    p = loaded.profile
    cwd = os.getcwd()
    lines = [f"{loaded.path}: valid" + (f" - {p.description}" if p.description else "")]
    if p.server.command:
        lines.append(f"runs:        {' '.join(p.server.command)}")
    else:
        lines.append("runs:        the command given after '--'")
    listed = p.sandbox.allowlist()
    lines.append("network:     " + ("the host's network (DNS and CA certificates included)" if p.sandbox.host_network()
                                    else f"only {', '.join(listed)} (ports 443 and 80 unless named), through mcpbox's "
                                    "proxy; never loopback, link-local or private addresses unless listed as such; "
                                    f"at most {p.limits.connections} connections at once" if listed
                                    else "none (an empty network namespace; only unix sockets)"))
    lines.append("reads:       the server's own runtime (bound automatically)"
                 + "".join(f", {_path(e, cwd)}" for e in p.sandbox.read_only))
    written = [_path(e, cwd) for e in p.sandbox.read_write]
    if p.sandbox.writable_args:
        written.append("the paths its command line names (a file by its folder)")
    lines.append("writes:      " + (", ".join(written) or "nothing on the host")
                 + f"; a private /tmp and home of {p.limits.tmp_mb} MB each")
    lines.append("arguments:   host paths the command line names are bound "
                 + ("writable" if p.sandbox.writable_args else "read-only")
                 + " (never the home, a system root or a folder for secrets; the rest is said on stderr)")
    from mcpbox.relay.filters import says_secret

    secret = sorted({*(name for name in (*p.sandbox.env, *p.sandbox.set_env) if says_secret(name)), *p.redact.env})
    given = [f"{name}={'(a secret)' if name in secret else value}" for name, value in p.sandbox.set_values().items()]
    lines.append("environment: " + (", ".join(p.sandbox.env) or "none") + " from the host"
                 + (f"; set by the profile: {', '.join(given)}" if given else "") + "; everything else is cleared")
    plain = [name for name in (*p.sandbox.env, *p.sandbox.set_env) if name not in secret]
    lines.append("secrets:     " + (", ".join(secret) + " (their values are redacted in everything mcpbox writes)"
                                    if secret else "none")
                 + (f"; passed as plain values: {', '.join(plain)}" if plain else ""))
    limits = p.limits
    lines.append(f"limits:      {limits.memory_mb} MB memory, {limits.processes} processes, {limits.threads} threads, "
                 f"{limits.open_files} open files, {limits.cpu_seconds} s CPU, {limits.file_size_mb} MB per file, "
                 f"{limits.message_mb} MB per message")
    tools = _catalog(p.tools)
    if p.tools.arguments:
        rules = "; ".join(f"{tool}.{arg} must match {glob}" for tool, args in p.tools.arguments.items()
                          for arg, glob in args.items())
        tools += f"; arguments: {rules}"
    if p.tools.rate:
        tools += "; rate limits: " + ", ".join(f"{tool} {rate}" for tool, rate in p.tools.rate.items())
    lines.append(f"tools:       {tools}")
    lines.append(f"resources:   {_catalog(p.resources)}")
    lines.append(f"prompts:     {_catalog(p.prompts)}")
    asks = [name for name in ("sampling", "elicitation", "roots") if getattr(p.client, name)]
    refused = [name for name in ("sampling", "elicitation", "roots") if not getattr(p.client, name)]
    lines.append("may ask:     " + (", ".join(asks) or "nothing") + " of the client"
                 + (f" (refused: {', '.join(refused)})" if refused else ""))
    lines.append(f"signature:   {_signature(p)}")
    lines.append(f"audit:       arguments {p.audit.arguments}"
                 + (f", written to {p.audit.path}" if p.audit.path else ""))
    return lines


def _signature(p: Profile) -> str:
    verify = p.verify
    if verify is None:
        return "not checked (no [verify] section)"
    if verify.identity:
        signer = f"exactly {verify.identity}"
    else:
        signer = f"any release of {verify.repository}"
        if verify.workflow:
            signer += f" built by workflow {verify.workflow}"
        if verify.ref:
            signer += f" from a ref matching {verify.ref}"
    root = verify.trusted_root or f"the Sigstore public-good root ({trust_root.path_for(None)})"
    if verify.artifact is None:
        when = ("must have" if verify.provenance == "required" else
                "is checked when its registry publishes it; it must have")
        return (f"an npx/uvx server's package (not its dependencies) {when} provenance built by {signer}, issuer "
                f"{verify.issuer}, checked against {root} at install and 'mcpbox update'")
    return (f"{verify.artifact} must be signed ({verify.bundle}) by {signer}, issuer {verify.issuer}, "
            f"checked offline against {root}; what runs is the verified copy")


def _path(entry: str, cwd: str) -> str:
    expanded = expand_path(entry, cwd)
    return expanded if expanded == entry else f"{entry} ({expanded})"


def _catalog(section: Tools | Catalog) -> str:
    if not section.allow:
        text = "none"
    elif "*" in section.allow:
        text = "all"
    else:
        text = "only " + ", ".join(section.allow)
    return text + (f", except {', '.join(section.deny)}" if section.deny else "")


def list_profiles() -> list[str]:
    lines = []
    found = [(label, path) for label, directory in (("yours", paths.user_profiles_dir()),
                                                     ("shipped", paths.shipped_profiles_dir()))
             for path in sorted(Path(directory).glob("*.toml"))]
    width = max((len(path.stem) for _, path in found), default=0) + 1
    for label, path in found:
        name = path.stem
        try:
            shadowed = find(name) != str(path)
            profile = load(str(path)).profile
            summary, granted = profile.description or "(no description)", grants(profile)
        except Exception as error:  # a broken profile is listed with its problem, not hidden
            shadowed, summary, granted = False, f"BROKEN: {error}", ""
        note = " (hidden by yours)" if shadowed else ""
        lines.append(f"{name:<{width}} {label:<8} {summary}{note}")
        if granted:
            lines.append(f"{'':<{width + 9}} grants: {granted}")
    return lines or ["no profiles found"]


def grants(p: Profile) -> str:
    """What a profile grants, on one line (`mcpbox profiles`; `mcpbox check` says it in full)."""
    sandbox, limits = p.sandbox, p.limits
    network = ("host network (internet, LAN, loopback)" if sandbox.host_network()
               else "network " + ", ".join(sandbox.allowlist()) if sandbox.allowlist() else "no network")
    files = [*(f"reads {e}" for e in sandbox.read_only), *(f"writes {e}" for e in sandbox.read_write)]
    if sandbox.writable_args:
        files.append("writes argument paths")
    env = ", ".join(sandbox.env) or "none"
    if sandbox.set_env:
        env += f" (sets {', '.join(sandbox.set_env)})"
    listed = "*" not in p.tools.allow and len(p.tools.allow) > 4
    tools = (f"{len(p.tools.allow)} named" if listed else _catalog(p.tools)) \
        + (" (argument rules)" if p.tools.arguments else "")
    asks = "; may ask for sampling" if p.client.sampling else ""
    return (f"{network}; {', '.join(files) or 'no host files'}; env {env}; "
            f"{limits.memory_mb} MB, {limits.processes} processes, {limits.threads} threads; tools {tools}{asks}")
