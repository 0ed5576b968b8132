import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * sftp-chroot's test double as a process ({@code sftp-chroot test-server}), for JUnit 5.
 *
 * <p>As an extension, {@code @ExtendWith(SftpChrootTestServer.Extension.class)} gives each test method that
 * declares a {@code SftpChrootTestServer} parameter its own server, stopped after that test. In an
 * {@code @BeforeAll}, call {@link #start(String...)} (e.g. {@code start("--files", "fixtures")})
 * and {@link #close()} in {@code @AfterAll}.
 *
 * <p>The command is $SFTP_CHROOT_CLI if set (e.g. "npx sftp-chroot"), else {@code node dist/cli.js}
 * from the working directory (this checkout, after npm run build).
 */
public final class SftpChrootTestServer implements ExtensionContext.Store.CloseableResource, AutoCloseable {
    public final String host;
    public final int port;
    public final String user;
    public final String password;
    public final String privateKeyPath;
    public final String knownHostsPath;
    public final String hostKeyFingerprint;
    /** Host path of the user's root. */
    public final String root;
    public final String url;
    /** Every audit record streamed so far (guarded by itself). */
    public final List<Map<String, Object>> events = new ArrayList<>();

    private final Process process;

    private SftpChrootTestServer(Process process, Map<String, Object> info) {
        this.process = process;
        host = (String) info.get("host");
        port = ((Number) info.get("port")).intValue();
        user = (String) info.get("user");
        password = (String) info.get("password");
        privateKeyPath = (String) info.get("privateKeyPath");
        knownHostsPath = (String) info.get("knownHostsPath");
        hostKeyFingerprint = (String) info.get("hostKeyFingerprint");
        root = (String) info.get("root");
        url = (String) info.get("url");
    }

    static List<String> command() {
        String cli = System.getenv("SFTP_CHROOT_CLI");
        if (cli != null && !cli.isBlank()) return new ArrayList<>(Arrays.asList(cli.trim().split("\\s+")));
        return new ArrayList<>(List.of("node", "dist/cli.js"));
    }

    /** Starts a server; extra arguments as on the command line ("--files", dir, "--user", name, ...). */
    public static SftpChrootTestServer start(String... args) throws IOException {
        List<String> cmd = command();
        cmd.add("test-server");
        cmd.add("--json");
        cmd.addAll(Arrays.asList(args));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String first = out.readLine();
        if (first == null) {
            p.destroy();
            throw new IOException("sftp-chroot test-server did not start: " + String.join(" ", cmd) + " (see its stderr)");
        }
        SftpChrootTestServer server = new SftpChrootTestServer(p, Json.parseObject(first));
        Thread reader = new Thread(() -> server.readEvents(out), "sftp-chroot events");
        reader.setDaemon(true);
        reader.start(); // stdout must be read all the time: a full pipe would stall the server
        return server;
    }

    private void readEvents(BufferedReader out) {
        try {
            for (String line; (line = out.readLine()) != null; ) {
                Map<String, Object> record = Json.parseObject(line);
                synchronized (events) {
                    events.add(record);
                    events.notifyAll();
                }
            }
        } catch (IOException e) {
            // The process ended.
        }
    }

    /** The first audit record of this type matching {@code where}, even one that already arrived. */
    public Map<String, Object> waitFor(String event, Predicate<Map<String, Object>> where, long timeoutMs) throws InterruptedException {
        long end = System.currentTimeMillis() + timeoutMs;
        synchronized (events) {
            for (;;) {
                for (Map<String, Object> r : events) if (event.equals(r.get("event")) && where.test(r)) return r;
                long left = end - System.currentTimeMillis();
                if (left <= 0) {
                    List<Object> seen = new ArrayList<>();
                    for (Map<String, Object> r : events) seen.add(r.get("event"));
                    throw new AssertionError("no matching \"" + event + "\" record within " + timeoutMs + " ms (saw: " + seen + ")");
                }
                events.wait(left);
            }
        }
    }

    public Map<String, Object> waitFor(String event) throws InterruptedException {
        return waitFor(event, r -> true, 5000);
    }

    /** Closes stdin: the server stops and removes its root and key files. */
    @Override
    public void close() throws IOException, InterruptedException {
        process.getOutputStream().close();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new IOException("sftp-chroot test-server did not stop within 30 s");
        }
        if (process.exitValue() != 0) throw new IOException("sftp-chroot test-server exited with " + process.exitValue());
    }

    /** A file inside the user's root, as a host path. */
    public File file(String virtualPath) {
        return new File(root, virtualPath);
    }

    /** Resolves a SftpChrootTestServer test-method parameter: a new server, stopped after that test. */
    public static final class Extension implements ParameterResolver {
        @Override
        public boolean supportsParameter(ParameterContext pc, ExtensionContext ec) {
            return pc.getParameter().getType() == SftpChrootTestServer.class;
        }

        @Override
        public Object resolveParameter(ParameterContext pc, ExtensionContext ec) {
            // The method's store closes its CloseableResources when the test ends.
            return ec.getStore(ExtensionContext.Namespace.create(SftpChrootTestServer.class))
                .getOrComputeIfAbsent("server", k -> {
                    try {
                        return start();
                    } catch (IOException e) {
                        throw new IllegalStateException(e);
                    }
                }, SftpChrootTestServer.class);
        }
    }
}
