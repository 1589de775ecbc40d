"""Every program that the scripts, the tests and the benchmarks run is installed by the scripts.

A fresh clone has only what scripts/apt/*.txt and the venv's requirements put on the
machine; a program that one developer installed by hand (wrk once) makes CI green for
them and red on every clean machine. This reads every program the code runs, statically,
so that the check holds on any machine:

- Python in bench/, tests/ and scripts/: the first word of every argv list given to a
  function that runs a command (subprocess.run/Popen, a namespace's exec/popen/argv, ...),
  or assigned to a variable named ``cmd``; ``sh -c`` strings are read as shell.
- Shell scripts in scripts/, bench/ and .ci/: the word in command position of every
  simple command, in ``$(...)`` and ``trap`` strings too, minus builtins and functions.

Each must be named by a package line of scripts/apt/*.txt, be a console script of a
requirements/ distribution, or be a file of this checkout.
"""
import ast
import glob
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APT_LISTS = os.path.join(ROOT, "scripts", "apt")
HERE = os.path.abspath(__file__)

# Functions whose first argument is an argv list.
RUNNERS = {"run", "Popen", "call", "check_call", "check_output", "exec", "popen", "argv", "measure", "command",
           "_run"}
ARGV_NAMES = {"cmd", "argv", "command"}
SHELL_WORDS = set("""
    . : [ alias bg break builtin caller cd command compgen complete continue declare dirs disown echo enable eval
    exec exit export false fc fg getopts hash help history jobs kill let local logout mapfile popd printf pushd
    pwd read readarray readonly return set shift shopt source suspend test times trap true type typeset ulimit
    umask unalias unset wait case esac for in if then else elif fi while until do done function select time
    coproc
""".split())
# Words after which the next word is the program that really runs.
WRAPPERS = {"exec": 0, "command": 0, "time": 0, "nohup": 0, "timeout": None, "xargs": None, "env": None,
            "flock": 1, "chroot": 1}
# Console scripts a venv always has, beside its distributions' entry points.
VENV_ALWAYS = {"python", "python3", "pip", "pip3"}


# --- the install lists ---------------------------------------------------------------------

def install_lists(directory=APT_LISTS):
    """{program: (list name, package)} from every scripts/apt/*.txt."""
    programs = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.txt"))):
        name = os.path.basename(path)[:-4]
        for package, provided in packages(path):
            for program in provided:
                programs.setdefault(program, (name, package))
    return programs


def packages(path):
    """[(package, [programs])] of one list: the first word of each line, then its programs."""
    out = []
    with open(path) as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if words:
                out.append((words[0], words[1:]))
    return out


def _requirement_names(path, seen=None):
    seen = set() if seen is None else seen
    if path in seen or not os.path.exists(path):
        return set()
    seen.add(path)
    names = set()
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line.startswith("-r "):
                names |= _requirement_names(os.path.join(os.path.dirname(path), line[3:].strip()), seen)
            elif line and not line.startswith("-"):
                names.add(re.split(r"[\[=<>!~; ]", line, 1)[0].lower())
    return names


def _dist_name(text):
    return re.split(r"[\[=<>!~; (]", text.strip(), 1)[0].lower().replace("_", "-")


def venv_programs():
    """Console scripts of the distributions requirements/test.txt pins and of what they require."""
    from importlib import metadata
    dists = {_dist_name(d.metadata["Name"] or ""): d for d in metadata.distributions()}
    todo, seen, programs = list(_requirement_names(os.path.join(ROOT, "requirements", "test.txt"))), set(), \
        set(VENV_ALWAYS)
    while todo:
        name = todo.pop().replace("_", "-")
        if name in seen or name not in dists:
            continue
        seen.add(name)
        dist = dists[name]
        programs.update(ep.name for ep in dist.entry_points if ep.group == "console_scripts")
        todo += [_dist_name(r) for r in (dist.requires or []) if "extra ==" not in r]
    return programs


# --- what the code runs --------------------------------------------------------------------

def _constants(tree):
    """Module-level NAME = "string" (or "string" % x) assignments."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Mod):
                value = value.left
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                out[node.targets[0].id] = value.value
    return out


def _string(node, constants):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _argv_elements(node):
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        node = node.left
    if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
        return node.elts
    return None


def _from_argv(elts, constants, where):
    first = _string(elts[0], constants)
    if first is None:
        return []
    program = os.path.basename(first) if first.startswith("/") else first
    if not re.match(r"^[A-Za-z0-9][\w.+-]*$", program):
        return []
    found = [(program, where)]
    if program in ("sh", "bash"):
        words = [_string(e, constants) for e in elts]
        if "-c" in words and words.index("-c") + 1 < len(words) and words[words.index("-c") + 1]:
            found += [(p, where) for p in shell_programs(words[words.index("-c") + 1])]
    return found


def python_programs(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    constants = _constants(tree)
    found = []
    for node in ast.walk(tree):
        where = "%s:%d" % (os.path.relpath(path, ROOT), getattr(node, "lineno", 0))
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in RUNNERS:
                for arg in list(node.args[:1]) + [k.value for k in node.keywords if k.arg in ("args", "cmd")]:
                    elts = _argv_elements(arg)
                    if elts:
                        found += _from_argv(elts, constants, where)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in ARGV_NAMES
                                                  for t in node.targets):
            elts = _argv_elements(node.value)
            if elts:
                found += _from_argv(elts, constants, where)
    return found


_SUBST = re.compile(r"\$\(([^()]*)\)")
_SEPARATORS = re.compile(r";;|&&|\|\||[;|&(){}`!]|\b(?:then|do|else|elif|if|while|until)\b")


def _shell_lines(text):
    text = re.sub(r"\\\n", " ", text)
    lines, heredoc = [], None
    for line in text.split("\n"):
        if heredoc:
            if line.strip() == heredoc:
                heredoc = None
            continue
        m = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if m:
            heredoc = m.group(1)
        lines.append(line)
    return lines


def shell_programs(text, functions=()):
    """The programs a shell text runs in command position (builtins and functions left out)."""
    functions = set(functions) | set(re.findall(r"^\s*([\w-]+)\s*\(\)\s*\{", text, re.M))
    pending, found = _shell_lines(text), []
    while pending:
        line = pending.pop()
        line = re.sub(r"(^|\s)#.*$", "", line)
        # trap strings and command substitutions are commands of their own.
        for m in re.finditer(r"\btrap\s+'([^']*)'", line):
            pending.append(m.group(1))
        line = re.sub(r"\btrap\s+'[^']*'", "trap X", line)
        while True:
            m = _SUBST.search(line)
            if not m:
                break
            pending.append(m.group(1))
            line = line[:m.start()] + "X" + line[m.end():]
        line = re.sub(r"'[^']*'", "Q", line)
        while re.search(r"\$\{[^{}]*\}", line):
            line = re.sub(r"\$\{[^{}]*\}", "X", line)
        line = re.sub(r'"(\\.|[^"\\])*"', "Q", line)
        line = re.sub(r"\$?\(\(.*?\)\)", "X", line)
        line = re.sub(r"\[\[.*?\]\]", "X", line)
        line = re.sub(r"\b\w+\+?=\([^)]*\)", "", line)  # array assignments
        line = re.sub(r"^\s*[\w-]+\s*\(\)", "", line)  # function headers
        line = re.sub(r"^\s*[^\s()]+\)", "", line)  # case patterns
        for segment in _SEPARATORS.split(line):
            found += [p for p in _command_words((segment or "").split()) if p not in functions]
    return found


def _command_words(words):
    """The program of one simple command, and the wrapper programs in front of it (timeout, flock)."""
    skip, wrappers = 0, []
    while words:
        word = words.pop(0)
        if re.match(r"^\w+(\[[^]]*\])?\+?=", word) or re.match(r"^\d*[<>]", word):
            continue
        if skip:
            skip -= 1
            continue
        if word in WRAPPERS and not (word == "command" and words[:1] == ["-v"]):
            if word not in SHELL_WORDS:
                wrappers.append(word)
            skip = WRAPPERS[word]
            if skip is None:  # options and a duration or assignments, then the program
                while words and (words[0].startswith("-") or re.match(r"^[\d.]+[smhd]?$", words[0])
                                 or "=" in words[0]):
                    words.pop(0)
                skip = 0
            continue
        if word in SHELL_WORDS or word[0] in "$QX\"'-" or "$" in word:
            return wrappers
        if word.startswith("/"):
            return wrappers + [os.path.basename(word)]
        if "/" in word or not re.match(r"^[A-Za-z][\w.+-]*$", word):
            return wrappers
        return wrappers + [word]
    return wrappers


def _is_shell_script(path):
    if path.endswith((".py", ".txt", ".conf", ".md")) or not os.path.isfile(path):
        return False
    with open(path, errors="replace") as f:
        first = f.readline()
    return first.startswith("#!") and re.search(r"\b(ba)?sh\b", first) is not None or path.endswith("lib.sh")


def called_programs(root=ROOT):
    """[(program, where)] for every program bench/, tests/, scripts/ and .ci/ run."""
    found = []
    py = glob.glob(os.path.join(root, "bench", "*.py")) + glob.glob(os.path.join(root, "scripts", "*.py")) \
        + glob.glob(os.path.join(root, "tests", "**", "*.py"), recursive=True)
    for path in sorted(py):
        if "/fixtures/" in path or "/output/" in path or os.path.abspath(path) == HERE:
            continue
        found += python_programs(path)
    with open(os.path.join(root, "scripts", "lib.sh")) as f:
        lib_functions = re.findall(r"^\s*([\w-]+)\s*\(\)\s*\{", f.read(), re.M)
    shells = glob.glob(os.path.join(root, "scripts", "*")) + glob.glob(os.path.join(root, "bench", "*")) \
        + glob.glob(os.path.join(root, ".ci", "*"))
    for path in sorted(shells):
        if _is_shell_script(path):
            with open(path) as f:
                text = f.read()
            found += [(p, os.path.relpath(path, root)) for p in shell_programs(text, lib_functions)]
    return found


def checkout_programs(root=ROOT):
    """Files of this checkout that code runs by name (never on PATH, always beside it)."""
    return {os.path.basename(p) for p in glob.glob(os.path.join(root, "scripts", "*"))
            + glob.glob(os.path.join(root, "bench", "*"))}


def not_installed(called, listed, venv, checkout):
    """{program: [where it is run]} for every program that nothing installs."""
    out = {}
    for program, where in called:
        if program in listed or program in venv or program in checkout:
            continue
        out.setdefault(program, []).append(where)
    return out


# --- the tests -----------------------------------------------------------------------------

def test_every_program_the_code_runs_is_installed_by_the_scripts():
    missing = not_installed(called_programs(), install_lists(), venv_programs(), checkout_programs())
    assert not missing, "run but installed by nothing (add each to a scripts/apt/ list with its package): %s" % (
        "; ".join("%s (%s)" % (p, ", ".join(sorted(set(w))[:3])) for p, w in sorted(missing.items())))


def test_the_scan_sees_the_load_generators_and_report_checkers():
    programs = {p for p, where in called_programs()}
    # Run through a namespace's popen, a variable named cmd, a module constant, a shell script.
    assert {"wrk", "ab", "nginx", "time", "promtool", "chromium", "qemu-system-x86_64", "conntrack", "nft"} <= programs
    assert not {"unit", "build", "bookworm", "stage_unit", "nc_venv", "log"} & programs


def test_a_program_dropped_from_the_lists_is_reported_with_where_it_runs(tmp_path):
    for name in os.listdir(APT_LISTS):
        with open(os.path.join(APT_LISTS, name)) as src, open(str(tmp_path / name), "w") as dst:
            dst.write("".join(line for line in src if not line.startswith("wrk ")))
    missing = not_installed(called_programs(), install_lists(str(tmp_path)), venv_programs(), checkout_programs())
    assert list(missing) == ["wrk"]
    assert any(w.startswith("bench/b5_sustained.py:") for w in missing["wrk"])


def test_shell_scan_reads_command_positions_only():
    text = ('f() { x=$(sha256sum "$1" | cut -c1-12); }\ncase $a in\n  build) f ;;\nesac\n'
            'trap \'rm -rf "$tmp"\' EXIT\nALL=(unit build)\n[[ -n $x ]] && timeout 120 chromium --headless\n'
            'cat > f <<\'EOF\'\nnot_a_program here\nEOF\nexec scripts/test\n')
    assert sorted(shell_programs(text)) == ["cat", "chromium", "cut", "rm", "sha256sum", "timeout"]


def _dpkg_installed(package):
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, universal_newlines=True, check=False)
    return "install ok installed" in res.stdout


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system")
def test_each_listed_package_really_ships_the_programs_it_names():
    wrong = []
    for path in sorted(glob.glob(os.path.join(APT_LISTS, "*.txt"))):
        for package, programs in packages(path):
            if not programs or not _dpkg_installed(package):
                continue  # checked where the package is installed (every CI machine after scripts/test)
            listing = subprocess.run(["dpkg", "-L", package], stdout=subprocess.PIPE, universal_newlines=True,
                                     check=False).stdout.split("\n")
            shipped = {os.path.realpath(line) for line in listing if line.startswith("/")}
            for program in programs:
                # Debian's alternatives (awk -> mawk, iptables -> xtables-nft-multi) count by their target.
                on_path = [os.path.realpath(os.path.join(d, program)) for d in ("/usr/sbin", "/usr/bin", "/usr/lib/systemd")]
                if not any(line.endswith("/" + program) for line in listing) and not shipped & set(on_path):
                    wrong.append("%s does not ship %s" % (package, program))
    assert not wrong, "; ".join(wrong)
