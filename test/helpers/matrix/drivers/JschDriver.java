/*
 * JSch 0.1.5x (Debian's libjsch-java) as a matrix driver. Contract: test/helpers/matrix/driver.ts.
 * Built at test time: javac -cp /usr/share/java/jsch.jar -d DIR JschDriver.java
 *
 * JSch reads PEM keys only (no ed25519), signs RSA only with ssh-rsa, and verifies only RSA, DSA and
 * ECDSA host keys. It cannot send names that are not UTF-8: setFilenameEncoding is refused for
 * SFTP version 3 servers.
 */
import com.jcraft.jsch.ChannelSftp;
import com.jcraft.jsch.JSch;
import com.jcraft.jsch.Logger;
import com.jcraft.jsch.Session;
import com.jcraft.jsch.UIKeyboardInteractive;
import com.jcraft.jsch.UserInfo;
import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Vector;

public class JschDriver {
    static final List<String> log = Collections.synchronizedList(new ArrayList<>());

    static Map<String, String> args = new HashMap<>();
    static ChannelSftp sftp;

    // ---- output ----

    static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof Boolean || v instanceof Number) return v.toString();
        if (v instanceof List) {
            StringBuilder b = new StringBuilder("[");
            for (Object o : (List<?>) v) b.append(b.length() > 1 ? ", " : "").append(json(o));
            return b.append(']').toString();
        }
        if (v instanceof Map) {
            StringBuilder b = new StringBuilder("{");
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet())
                b.append(b.length() > 1 ? ", " : "").append(json(e.getKey().toString())).append(": ").append(json(e.getValue()));
            return b.append('}').toString();
        }
        StringBuilder b = new StringBuilder("\"");
        for (char c : v.toString().toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    static void emit(String cell, boolean ok, Object value, String error) {
        String line = "{\"cell\": " + json(cell) + ", \"ok\": " + ok + ", \"value\": " + json(value)
            + (error == null ? "" : ", \"error\": " + json(error)) + "}";
        System.out.println(line);
        System.out.flush();
    }

    /** A name as its UTF-8 bytes: printable ASCII as is, any other byte (and backslash) as \xNN. */
    static String esc(String name) {
        StringBuilder b = new StringBuilder();
        for (byte c : name.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
            if (c >= 0x20 && c < 0x7f && c != '\\') b.append((char) c);
            else b.append(String.format("\\x%02x", c & 0xff));
        }
        return b.toString();
    }

    // ---- login ----

    static class Answers implements UserInfo, UIKeyboardInteractive {
        final String password;
        Answers(String password) { this.password = password; }
        public String getPassphrase() { return null; }
        public String getPassword() { return password; }
        public boolean promptPassword(String message) { return true; }
        public boolean promptPassphrase(String message) { return false; }
        public boolean promptYesNo(String message) { return false; }
        public void showMessage(String message) { }
        public String[] promptKeyboardInteractive(String dest, String name, String instruction, String[] prompt, boolean[] echo) {
            String[] r = new String[prompt.length];
            java.util.Arrays.fill(r, password);
            return r;
        }
    }

    static Map<String, Object> login() throws Exception {
        JSch.setLogger(new Logger() {
            public boolean isEnabled(int level) { return true; }
            public void log(int level, String message) { log.add(message); }
        });
        JSch jsch = new JSch();
        jsch.setKnownHosts(args.get("known-hosts"));
        String auth = args.get("auth");
        if (args.containsKey("key")) jsch.addIdentity(args.get("key"));
        Session s = jsch.getSession(args.get("user"), args.get("host"), Integer.parseInt(args.get("port")));
        s.setConfig("StrictHostKeyChecking", "yes");
        s.setConfig("PreferredAuthentications",
            auth.equals("password") ? "password"
            : auth.equals("keyboard-interactive") ? "keyboard-interactive"
            : auth.equals("wrongkey-then-password") ? "publickey,password" : "publickey");
        s.setPassword(args.get("password"));
        s.setUserInfo(new Answers(args.get("password")));
        s.connect(10000);
        sftp = (ChannelSftp) s.openChannel("sftp");
        sftp.connect(10000);

        Map<String, Object> value = new HashMap<>();
        String method = null;
        boolean offeredKey = false;
        for (String l : log) {
            if (l.startsWith("Authentication succeeded (")) method = l.substring(26, l.indexOf(')'));
            if (l.equals("Next authentication method: publickey")) offeredKey = true;
        }
        value.put("method", method);
        if (auth.equals("wrongkey-then-password")) value.put("keyRejected", offeredKey && "password".equals(method));
        value.put("hostKey", s.getHostKey().getType());
        return value;
    }

    // ---- ops ----

    static List<String> names(String dir) throws Exception {
        List<String> out = new ArrayList<>();
        for (Object o : (Vector<?>) sftp.ls(dir)) {
            String n = ((ChannelSftp.LsEntry) o).getFilename();
            if (!n.equals(".") && !n.equals("..")) out.add(esc(n));
        }
        Collections.sort(out);
        return out;
    }

    static String local(String name) { return new File(args.get("local"), name).getPath(); }

    static Object op(String name) throws Exception {
        switch (name) {
            case "realpath-dotdot": return List.of(sftp.realpath("/.."), sftp.realpath(".."));
            case "list": return names("/w");
            case "mkdir": sftp.mkdir("/w/m"); return null;
            case "upload-5m": sftp.put(local("up5m.bin"), "/w/m/up5m.bin"); return null;
            case "download-5m": sftp.get("/w/dl5m.bin", local("dl5m.bin")); return null;
            case "download-20m": sftp.get("/w/dl20m.bin", local("dl20m.bin")); return null;
            case "rename": sftp.rename("/w/m/up5m.bin", "/w/m/renamed.bin"); return null;
            case "stat": return sftp.stat("/w/m/renamed.bin").getSize();
            case "chmod": sftp.chmod(0640, "/w/m/renamed.bin"); return null;
            case "symlink-readlink":
                sftp.symlink("renamed.bin", "/w/m/link");
                return sftp.readlink("/w/m/link");
            case "remove": sftp.rm("/w/m/link"); sftp.rm("/w/m/renamed.bin"); return null;
            case "rmdir": sftp.rmdir("/w/m"); return null;
            default: throw new IllegalArgumentException("unknown op " + name);
        }
    }

    static String describe(Throwable e) {
        String m = e.getClass().getSimpleName() + ": " + e.getMessage();
        return e.getCause() != null ? m + " (" + describe(e.getCause()) + ")" : m;
    }

    public static void main(String[] argv) throws Exception {
        for (int i = 0; i + 1 < argv.length; i += 2) args.put(argv[i].substring(2), argv[i + 1]);
        String auth = args.get("auth");
        try {
            Map<String, Object> value = login();
            value.put("root", names("/"));
            emit(auth, true, value, null);
        } catch (Exception e) {
            // The server's MACs (the usual cause of a failed negotiation for JSch 0.1.5x).
            List<String> proposal = new ArrayList<>();
            for (String l : log) if (l.startsWith("kex: server: ")) proposal.add(l.substring(13));
            emit(auth, false, null, describe(e) + (proposal.size() > 4 ? "; server MACs: " + proposal.get(4) : ""));
            System.exit(1);
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String name : args.getOrDefault("ops", "").split(",")) {
            if (name.isEmpty()) continue;
            if (in.readLine() == null) break;
            try {
                emit(name, true, op(name), null);
            } catch (Exception e) {
                emit(name, false, null, describe(e));
            }
        }
        sftp.getSession().disconnect();
        System.exit(0);
    }
}
