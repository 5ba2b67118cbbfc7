"""The SQLite store's files and the generated root key are 0600, and the
data directory 0700, whatever the umask: also when the data directory already
exists (unless it holds other files or is shared: then a warning), and for
files an older run left wider."""
import os
import stat
import unittest

from harness import Server, mkdtemp

STORE_FILES = ("fluxhook.db", "fluxhook.db-wal", "fluxhook.db-shm", "fluxhook.db-cred", "root.key")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class StoreFiles(unittest.TestCase):
    def setUp(self):
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)

    def serve(self, db):
        srv = Server(db="sqlite:" + db, root_key=False, test=self)
        srv.start()
        # A write, so that the WAL has been written by the running server.
        status, _, _ = srv.api("POST", "/v1/endpoints",
                               {"url": "https://example.com/hook"}, key=srv.root_key)
        self.assertEqual(status, 201)
        return srv

    def assert_private(self, directory):
        for name in STORE_FILES:
            path = os.path.join(directory, name)
            self.assertTrue(os.path.exists(path), name)
            self.assertEqual(oct(mode(path)), oct(0o600), name)

    def test_existing_directory(self):
        # As `mkdir` or a service manager leaves it, empty or with the store alone.
        d = os.path.join(mkdtemp(), "data")
        os.mkdir(d, 0o755)
        srv = self.serve(os.path.join(d, "fluxhook.db"))
        self.assertTrue(srv.read_root_key_file().startswith("fhk_"))
        self.assert_private(d)
        self.assertEqual(oct(mode(d)), oct(0o700))
        self.assertIn("mode of directory '%s' narrowed from 0755 to 0700" % d,
                      srv.log_since_start())
        srv.stop()
        os.chmod(d, 0o750)
        srv.start()
        self.assertEqual(oct(mode(d)), oct(0o700))
        self.assertIn("narrowed from 0750 to 0700", srv.log_since_start())

    def test_directory_of_others_kept_with_warning(self):
        # A directory holding other files than the store's, and a sticky one
        # shared like /tmp: narrowing them would lock others out.
        for name, dmode, other in (("project", 0o755, "notes.txt"), ("shared", 0o1777, None)):
            d = os.path.join(mkdtemp(), name)
            os.mkdir(d)
            os.chmod(d, dmode)
            if other is not None:
                with open(os.path.join(d, other), "w") as f:
                    f.write("not fluxhook's\n")
            srv = self.serve(os.path.join(d, "fluxhook.db"))
            self.assert_private(d)
            self.assertEqual(oct(mode(d)), oct(dmode), name)
            log = srv.log_since_start()
            self.assertIn("directory '%s' of the store is mode %04o and " % (d, dmode), log)
            self.assertIn("give the store a directory of its own to have it 0700", log)
            srv.stop()

    def test_new_directories(self):
        top = mkdtemp()
        d = os.path.join(top, "a", "b")
        self.serve(os.path.join(d, "fluxhook.db"))
        self.assert_private(d)
        self.assertEqual(oct(mode(d)), oct(0o700))
        self.assertEqual(oct(mode(os.path.join(top, "a"))), oct(0o700))

    def test_wider_files_narrowed(self):
        d = mkdtemp()
        db = os.path.join(d, "fluxhook.db")
        srv = self.serve(db)
        srv.stop()
        # As an older fluxhook left them (the WAL is gone after a clean stop).
        for name in ("fluxhook.db", "fluxhook.db-wal", "fluxhook.db-shm", "fluxhook.db-cred"):
            with open(os.path.join(d, name), "ab"):
                pass
            os.chmod(os.path.join(d, name), 0o644)
        srv.start()
        status, _, _ = srv.api("GET", "/v1/endpoints", key=srv.root_key)
        self.assertEqual(status, 200)
        for name in ("fluxhook.db", "fluxhook.db-wal", "fluxhook.db-shm", "fluxhook.db-cred"):
            self.assertEqual(oct(mode(os.path.join(d, name))), oct(0o600), name)
        self.assertIn("mode of '%s' narrowed from 0644 to 0600" % db, srv.log_since_start())


if __name__ == "__main__":
    unittest.main()
