import static org.junit.jupiter.api.Assertions.assertEquals;

import com.jcraft.jsch.ChannelSftp;
import com.jcraft.jsch.JSch;
import com.jcraft.jsch.Session;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Uploads with JSch to sftp-chroot's test double, then checks the root and the audit records. */
@ExtendWith(SftpChrootTestServer.Extension.class)
class SftpExampleTest {
    @Test
    void uploadsAReportThatLandsInTheRootAndIsLogged(SftpChrootTestServer s) throws Exception {
        JSch jsch = new JSch();
        jsch.setKnownHosts(s.knownHostsPath); // only this server's host keys are accepted
        Session session = jsch.getSession(s.user, s.host, s.port);
        session.setConfig("StrictHostKeyChecking", "yes");
        session.setConfig("PreferredAuthentications", "password"); // JSch 0.1.5x cannot read OpenSSH-format keys
        session.setPassword(s.password);
        session.connect(10000);
        try {
            ChannelSftp sftp = (ChannelSftp) session.openChannel("sftp");
            sftp.connect(10000);
            sftp.mkdir("/out");
            sftp.put(new ByteArrayInputStream("1,2\n".getBytes(StandardCharsets.UTF_8)), "/out/report.csv");
            sftp.disconnect();
        } finally {
            session.disconnect();
        }

        assertEquals("1,2\n", Files.readString(s.file("out/report.csv").toPath()));
        Map<String, Object> upload = s.waitFor("transfer", r -> "upload".equals(r.get("direction")), 5000);
        assertEquals("/out/report.csv", upload.get("path"));
        assertEquals(4, ((Number) upload.get("bytesWritten")).intValue());
        assertEquals("complete", upload.get("status"));
    }
}
