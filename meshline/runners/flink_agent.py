"""A Java agent that keeps the gRPC servers of Beam's Flink job server on loopback.

Beam Java opens its job service, artifact staging and every Fn API server (control,
data, state, logging, provisioning) through ``ServerFactory``, whose
``createServer`` computes a loopback address and then binds
``NettyServerBuilder.forPort(port)``: all interfaces. The job server has no option
for it (``--job-host`` only names the address it advertises).

The agent (:data:`AGENT_SOURCE`, Meshline's own code) rewrites, as a class loads, each
``NettyServerBuilder.forPort(int)`` call in a Beam ``*ServerFactory*`` class into
``NettyServerBuilder.forAddress(new InetSocketAddress(InetAddress.getLoopbackAddress(), port))``,
taking the builder's class from the instruction, so it serves any vendored gRPC version.
It rewrites with ASM (``org.ow2.asm:asm``, from Maven Central), loaded in a class loader
of its own so that it never meets the job server's classes. It is compiled with
``javac`` at provisioning time into ``~/.cache/meshline/flink/loopback-agent-HASH/`` and
the JVM starts with ``-javaagent``. Whether it worked is checked from outside, on the
JVM's sockets (:mod:`meshline.runners.loopback`).

On a Flink cluster, Beam's Fn API servers run in the TaskManagers, which Meshline does
not start: ``python -m meshline.runners.flink_agent`` builds the agent and prints the JVM
option to give them (``env.java.opts.taskmanager`` in Flink's configuration).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from meshline.errors import RunnerError
from meshline.runners.loopback import ALLOW_FLAG
from meshline.runners.maven import DEPENDENCY_PLUGIN, find_mvn, mvn_error, run_mvn

__all__ = ["AGENT_SOURCE", "ASM_VERSION", "agent_options", "find_agent"]

ASM_VERSION = "9.8"

AGENT_SOURCE = {
    "Agent.java": """\
package dev.meshline.loopback;

import java.lang.instrument.ClassFileTransformer;
import java.lang.instrument.Instrumentation;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Paths;

/** Meshline: Beam's gRPC servers in this JVM bind the loopback address instead of all interfaces. */
public final class Agent {
  private Agent() {}

  /** {@code args} is the path of the ASM jar, loaded apart from the application's classes. */
  public static void premain(String args, Instrumentation inst) throws Exception {
    URL self = Agent.class.getProtectionDomain().getCodeSource().getLocation();
    URL asm = Paths.get(args).toUri().toURL();
    ClassLoader loader = new URLClassLoader(new URL[] {self, asm}, ClassLoader.getPlatformClassLoader());
    Class<?> rewriter = loader.loadClass("dev.meshline.loopback.Rewriter");
    inst.addTransformer((ClassFileTransformer) rewriter.getConstructor().newInstance());
  }

  /** The address a rewritten {@code NettyServerBuilder.forPort(port)} binds instead. */
  public static InetSocketAddress loopback(int port) {
    return new InetSocketAddress(InetAddress.getLoopbackAddress(), port);
  }
}
""",
    "Rewriter.java": """\
package dev.meshline.loopback;

import java.lang.instrument.ClassFileTransformer;
import java.security.ProtectionDomain;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;

/** In Beam's server factories: NettyServerBuilder.forPort(p) becomes forAddress(Agent.loopback(p)). */
public final class Rewriter implements ClassFileTransformer {
  @Override
  public byte[] transform(
      ClassLoader loader, String name, Class<?> redefined, ProtectionDomain domain, byte[] bytes) {
    if (name == null || !name.startsWith("org/apache/beam/") || !name.contains("ServerFactory")) {
      return null;
    }
    try {
      ClassReader reader = new ClassReader(bytes);
      ClassWriter writer = new ClassWriter(reader, ClassWriter.COMPUTE_MAXS);
      boolean[] changed = {false};
      reader.accept(
          new ClassVisitor(Opcodes.ASM9, writer) {
            @Override
            public MethodVisitor visitMethod(
                int access, String method, String descriptor, String signature, String[] exceptions) {
              MethodVisitor next = super.visitMethod(access, method, descriptor, signature, exceptions);
              return new MethodVisitor(Opcodes.ASM9, next) {
                @Override
                public void visitMethodInsn(
                    int opcode, String owner, String called, String desc, boolean isInterface) {
                  if (opcode == Opcodes.INVOKESTATIC
                      && owner.endsWith("/NettyServerBuilder")
                      && called.equals("forPort")
                      && desc.equals("(I)L" + owner + ";")) {
                    super.visitMethodInsn(
                        Opcodes.INVOKESTATIC,
                        "dev/meshline/loopback/Agent",
                        "loopback",
                        "(I)Ljava/net/InetSocketAddress;",
                        false);
                    super.visitMethodInsn(
                        Opcodes.INVOKESTATIC,
                        owner,
                        "forAddress",
                        "(Ljava/net/SocketAddress;)L" + owner + ";",
                        false);
                    changed[0] = true;
                    return;
                  }
                  super.visitMethodInsn(opcode, owner, called, desc, isInterface);
                }
              };
            }
          },
          0);
      return changed[0] ? writer.toByteArray() : null;
    } catch (RuntimeException e) {
      System.err.println("meshline loopback agent: could not rewrite " + name + ": " + e);
      return null;
    }
  }
}
""",
}


def _cache_root() -> Path:
    base = os.environ.get("MESHLINE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "meshline")
    return Path(base) / "flink"


def _digest() -> str:
    h = hashlib.sha256(ASM_VERSION.encode())
    for name, text in sorted(AGENT_SOURCE.items()):
        h.update(name.encode() + b"\0" + text.encode())
    return h.hexdigest()[:12]


def _agent_dir() -> Path:
    return _cache_root() / f"loopback-agent-{_digest()}"


def agent_options(agent_dir: Path) -> list[str]:
    """The JVM option that loads the agent in ``agent_dir``."""
    return [f"-javaagent:{agent_dir / 'agent.jar'}={agent_dir / f'asm-{ASM_VERSION}.jar'}"]


def find_agent(*, provision: bool = True) -> Path:
    """The directory of the compiled agent (``agent.jar`` and ASM's jar); builds it if it must."""
    target = _agent_dir()
    if (target / "agent.jar").is_file():
        return target
    if not provision:
        raise RunnerError(f"Meshline's loopback agent for the Flink job server is not built at {target}")
    return _build(target)


def _unavailable(what: str) -> RunnerError:
    return RunnerError(
        f"cannot build Meshline's agent that keeps Beam's Flink job server on 127.0.0.1 ({what}); without it "
        f"the job server listens on all interfaces, where anyone who can reach it can run code as this user: "
        f"fix that, or pass {ALLOW_FLAG} to run anyway"
    )


def _build(target: Path) -> Path:
    javac = shutil.which("javac")
    if javac is None:
        raise _unavailable("javac, from a JDK, is not on PATH")
    mvn = find_mvn(str(_unavailable("Maven (mvn) is not on PATH to fetch ASM")))
    started = time.monotonic()
    print("building Meshline's loopback agent for the Flink job server (once) ...", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".agent-"))
    try:
        asm = f"org.ow2.asm:asm:{ASM_VERSION}"
        proc = run_mvn(
            mvn, [f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={asm}", f"-DoutputDirectory={staging}"], staging
        )
        asm_jar = staging / f"asm-{ASM_VERSION}.jar"
        if proc.returncode != 0 or not asm_jar.is_file():
            raise _unavailable(f"could not fetch {asm} with mvn: {mvn_error(proc)}")
        sources = staging / "src"
        classes = staging / "classes"
        sources.mkdir()
        for name, text in AGENT_SOURCE.items():
            (sources / name).write_text(text, encoding="utf-8")
        compiled = subprocess.run(
            [javac, "--release", "11", "-nowarn", "-cp", str(asm_jar), "-d", str(classes)]
            + [str(sources / name) for name in sorted(AGENT_SOURCE)],
            capture_output=True,
            text=True,
            check=False,
        )
        if compiled.returncode != 0:
            first = next((ln for ln in compiled.stderr.splitlines() if ln.strip()), "javac failed")
            raise _unavailable(f"javac: {first}")
        _write_jar(staging / "agent.jar", classes)
        shutil.rmtree(sources)
        shutil.rmtree(classes)
        staging.chmod(0o755)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "agent.jar").is_file():  # not a concurrent build that got there first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"loopback agent ready at {target} (built in {time.monotonic() - started:.0f}s)", file=sys.stderr)
    return target


def _write_jar(jar: Path, classes: Path) -> None:
    manifest = (
        "Manifest-Version: 1.0\r\nCreated-By: Meshline\r\nPremain-Class: dev.meshline.loopback.Agent\r\n\r\n"
    )
    with zipfile.ZipFile(jar, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("META-INF/MANIFEST.MF", manifest)
        for path in sorted(classes.rglob("*.class")):
            z.write(path, path.relative_to(classes).as_posix())


if __name__ == "__main__":  # `python -m meshline.runners.flink_agent`: build it, print the JVM option
    try:
        print(" ".join(agent_options(find_agent())))
    except RunnerError as e:
        print(f"meshline: {e}", file=sys.stderr)
        sys.exit(1)
