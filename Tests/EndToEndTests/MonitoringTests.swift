import Foundation
import TestSupport
import XCTest

/// Issue 11: failures reach a person and staleness is visible. Health pings, the webhook and the
/// Prometheus textfile are checked against a real HTTP receiver (Tests/tools/http_receiver.py) and
/// the Prometheus text parser (prometheus_client); `status` and `doctor` through their exit codes.
final class MonitoringTests: XCTestCase {
    /// The receiver: a process that logs every request it gets as a JSON line.
    final class Receiver {
        let process: Process
        let port: Int
        let log: URL
        var url: String { "http://127.0.0.1:\(port)" }

        init(_ s: Scratch, mode: String = "ok") throws {
            log = s.url.appendingPathComponent("receiver-\(UUID().uuidString.prefix(6)).jsonl")
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "python3", Receiver.script.path, "--log", log.path, "--mode", mode, "--lifetime", "300"
            ]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            var line = Data()
            while !line.contains(UInt8(ascii: "\n")) {
                let d = out.fileHandleForReading.availableData
                if d.isEmpty { break }
                line += d
            }
            port =
                Int(
                    String(decoding: line, as: UTF8.self).split(separator: " ").last?.trimmingCharacters(
                        in: .whitespacesAndNewlines) ?? "") ?? 0
        }
        deinit { process.terminate(); process.waitUntilExit() }

        struct Request { var method: String; var path: String; var body: String; var contentType: String? }

        func requests() throws -> [Request] {
            guard let data = FileManager.default.contents(atPath: log.path) else { return [] }
            return try String(decoding: data, as: UTF8.self).split(separator: "\n").map { line in
                let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                let h = o["headers"] as? [String: String] ?? [:]
                return Request(
                    method: o["method"] as! String, path: o["path"] as! String, body: o["body"] as? String ?? "",
                    contentType: h["content-type"])
            }
        }

        static var script: URL {
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("tools/http_receiver.py")
        }
    }

    /// `name|command` -> value, for the series of `database`.
    func metrics(_ file: URL, database: URL) throws -> [String: Double] {
        // Prometheus' own parser: a file it cannot read fails here.
        let out = try sh(
            """
            python3 - '\(file.path)' <<'PY'
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in fam.samples:
                    print("%s|%s|%s|%r" % (s.name, s.labels.get("command"), s.labels.get("database"), s.value))
            PY
            """)
        var d: [String: Double] = [:]
        for line in out.split(separator: "\n") {
            let p = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            if p[2] == database.path { d["\(p[0])|\(p[1])"] = Double(p[3]) }
        }
        return d
    }

    /// Success: start + success pings, the webhook (always), metrics matching the run. Failures
    /// (a key that does not decode, a missing database, an unreachable store): start + fail ping
    /// with the error and the status, the failure webhook, no secret in anything sent; metrics
    /// keep the last success.
    func testPingsWebhookAndMetricsFollowEveryRun() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        let rx = try Receiver(s)
        let metricsFile = s.url.appendingPathComponent("laju.prom")
        f.env["BACKUP_PING_URL"] = rx.url + "/ping/0b1c2d3e-uuid"
        f.env["BACKUP_NOTIFY_URL"] = rx.url + "/hook/T0K3N"
        f.env["BACKUP_NOTIFY_ON"] = "always"
        f.env["BACKUP_METRICS_FILE"] = metricsFile.path
        f.env["BACKUP_PROFILE"] = "shop"
        let b = try CLI.run(["backup", "--json"], env: f.env)
        XCTAssertEqual(b.status, 0, b.output)
        let outcome = try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as! [String: Any]
        let key = outcome["key"] as! String
        var reqs = try rx.requests()
        XCTAssertEqual(
            reqs.map { "\($0.method) \($0.path)" },
            ["POST /ping/0b1c2d3e-uuid/start", "POST /ping/0b1c2d3e-uuid", "POST /hook/T0K3N"])
        XCTAssertTrue(reqs[1].body.contains(key), reqs[1].body)
        let hook = try JSONSerialization.jsonObject(with: Data(reqs[2].body.utf8)) as! [String: Any]
        XCTAssertEqual(reqs[2].contentType, "application/json")
        XCTAssertEqual(hook["event"] as? String, "success")
        XCTAssertEqual(hook["command"] as? String, "backup")
        XCTAssertEqual(hook["profile"] as? String, "shop")
        XCTAssertEqual(hook["key"] as? String, key)
        XCTAssertEqual(hook["exit_status"] as? Int, 0)
        XCTAssertEqual(hook["version"] as? Int, 1)
        XCTAssertTrue((hook["text"] as? String)?.contains("ok") ?? false)
        let size = Double(try f.sql("SELECT file_size FROM backup_files;").trimmingCharacters(in: .newlines))!
        var m = try metrics(metricsFile, database: f.database)
        XCTAssertEqual(m["laju_backup_last_exit_code|backup"], 0)
        XCTAssertEqual(m["laju_backup_last_stored_bytes|backup"], size)
        let success = try XCTUnwrap(m["laju_backup_last_success_timestamp_seconds|backup"])
        XCTAssertEqual(success, Date().timeIntervalSince1970, accuracy: 120)

        // Three failures, each: start + fail with the error line and status; the webhook too.
        let secret = "ThisIsNotAValidKeyButSecret-\(UUID().uuidString)"
        var bad = f.env; bad["BACKUP_ENCRYPTION_KEY"] = secret
        var gone = f.env; gone["BACKUP_DATABASE"] = s.url.appendingPathComponent("gone.sqlite3").path
        var down = f.env
        for (k, v) in [
            "BACKUP_STORAGE": "s3", "WASABI_ENDPOINT": "http://127.0.0.1:9", "WASABI_BUCKET": "bucket",
            "WASABI_ACCESS_KEY": "AKIDEXAMPLE", "WASABI_SECRET_KEY": "s3cr3t-never-shown-\(UUID().uuidString)",
            "BACKUP_S3_RETRIES": "1"
        ] { down[k] = v }
        for (env, status, words) in [
            (bad, Int32(2), "BACKUP_ENCRYPTION_KEY"), (gone, Int32(3), "does not exist"),
            (down, Int32(5), "127.0.0.1:9")
        ] {
            let before = try rx.requests().count
            let r = try CLI.run(["backup"], env: env)
            XCTAssertEqual(r.status, status, r.output)
            reqs = Array(try rx.requests().dropFirst(before))
            XCTAssertEqual(
                reqs.map { "\($0.method) \($0.path)" },
                ["POST /ping/0b1c2d3e-uuid/start", "POST /ping/0b1c2d3e-uuid/fail", "POST /hook/T0K3N"], r.output)
            XCTAssertTrue(reqs[1].body.hasPrefix("exit status \(status): "), reqs[1].body)
            XCTAssertTrue(reqs[1].body.contains(words), reqs[1].body)
            let h = try JSONSerialization.jsonObject(with: Data(reqs[2].body.utf8)) as! [String: Any]
            XCTAssertEqual(h["event"] as? String, "failure")
            XCTAssertEqual(h["exit_status"] as? Int, Int(status))
            for r in reqs {
                XCTAssertFalse(
                    r.body.contains(secret) || r.body.contains(f.key) || r.body.contains("s3cr3t-never-shown"),
                    "a secret was sent: \(r.body)")
            }
        }
        m = try metrics(metricsFile, database: f.database)
        XCTAssertEqual(m["laju_backup_last_exit_code|backup"], 5, "the last failure's status")
        XCTAssertEqual(
            m["laju_backup_last_success_timestamp_seconds|backup"], success, "a failure keeps the last success")
        XCTAssertEqual(m["laju_backup_last_stored_bytes|backup"], size)

        // verify and clean have their own series (and per-command ping URLs).
        f.env["BACKUP_PING_URL_VERIFY"] = rx.url + "/ping/verify-uuid"
        XCTAssertEqual(try CLI.run(["verify"], env: f.env).status, 0)
        XCTAssertEqual(try CLI.run(["clean"], env: f.env).status, 0)
        m = try metrics(metricsFile, database: f.database)
        XCTAssertEqual(m["laju_backup_last_exit_code|verify"], 0)
        XCTAssertEqual(m["laju_backup_last_exit_code|clean"], 0)
        XCTAssertEqual(m["laju_backup_last_exit_code|backup"], 5, "other commands' series are kept")
        XCTAssertTrue(try rx.requests().contains { $0.path == "/ping/verify-uuid" })
    }

    /// Restore points are monitored as commands of their own: their series sit beside the nightly
    /// backup's, a failure reaches the webhook, and they never ping the nightly backup's URL (a
    /// success every 15 minutes would hide a failed nightly run), only BACKUP_PING_URL_INCREMENTAL.
    func testRestorePointsAreMonitoredApartFromTheNightlyBackup() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        let rx = try Receiver(s)
        let metricsFile = s.url.appendingPathComponent("laju.prom")
        f.env["BACKUP_PING_URL"] = rx.url + "/ping/nightly"
        f.env["BACKUP_NOTIFY_URL"] = rx.url + "/hook/T0K3N"
        f.env["BACKUP_METRICS_FILE"] = metricsFile.path
        let p = try CLI.run(["backup", "--incremental"], env: f.env)
        XCTAssertEqual(p.status, 0, p.output)
        XCTAssertEqual(try rx.requests().count, 0, "a point pinged the nightly backup's URL or notified a success")
        var m = try metrics(metricsFile, database: f.database)
        XCTAssertEqual(m["laju_backup_last_exit_code|backup-incremental"], 0)
        XCTAssertNil(m["laju_backup_last_exit_code|backup"], "a point wrote the nightly backup's series")

        f.env["BACKUP_PING_URL_INCREMENTAL"] = rx.url + "/ping/points"
        _ = try f.sql("INSERT INTO items(name, qty) VALUES ('x', 1);")
        XCTAssertEqual(try CLI.run(["backup", "--incremental"], env: f.env).status, 0)
        XCTAssertEqual(
            try rx.requests().map { "\($0.method) \($0.path)" }, ["POST /ping/points/start", "POST /ping/points"])
        XCTAssertEqual(try CLI.run(["verify", "--at", "latest"], env: f.env).status, 0)
        m = try metrics(metricsFile, database: f.database)
        XCTAssertEqual(m["laju_backup_last_exit_code|verify-points"], 0)

        // A failed point: exit status, fail ping, webhook, its series.
        var bad = f.env
        bad["BACKUP_DATABASE"] = s.url.appendingPathComponent("gone.sqlite3").path
        let before = try rx.requests().count
        let r = try CLI.run(["backup", "--incremental"], env: bad)
        XCTAssertEqual(r.status, 3, r.output)
        let reqs = Array(try rx.requests().dropFirst(before))
        XCTAssertEqual(
            reqs.map { "\($0.method) \($0.path)" },
            ["POST /ping/points/start", "POST /ping/points/fail", "POST /hook/T0K3N"])
        let hook = try JSONSerialization.jsonObject(with: Data(reqs[2].body.utf8)) as! [String: Any]
        XCTAssertEqual(hook["command"] as? String, "backup-incremental")
        XCTAssertEqual(hook["event"] as? String, "failure")
    }

    /// A receiver that never answers, or refuses connections, does not change the result and costs
    /// at most BACKUP_NOTIFY_TIMEOUT per signal; each failure is one warning line.
    func testDeadReceiversCostBoundedTimeAndNeverChangeTheResult() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        let hang = try Receiver(s, mode: "hang")
        f.env["BACKUP_NOTIFY_TIMEOUT"] = "2"
        f.env["BACKUP_METRICS_FILE"] = "off"
        for url in [hang.url + "/ping/x", "http://127.0.0.1:9/ping/x"] {
            f.env["BACKUP_PING_URL"] = url
            f.env["BACKUP_NOTIFY_URL"] = url.replacingOccurrences(of: "/ping/x", with: "/hook")
            let started = Date()
            let r = try CLI.run(["backup"], env: f.env)
            let took = Date().timeIntervalSince(started)
            XCTAssertEqual(r.status, 0, r.output)
            // start + success ping, no webhook on success: 2 signals of at most 2 s, plus the backup.
            XCTAssertLessThan(took, 2 * 2 + 8, r.output)
            XCTAssertEqual(
                r.stderr.split(separator: "\n").filter { $0.contains("warning: start ping") }.count, 1, r.stderr)
            XCTAssertFalse(r.stderr.contains("/ping/x"), "the ping URL (a credential) was printed: \(r.stderr)")
            let g = try CLI.run(["backup", "--database", s.url.appendingPathComponent("gone.db").path], env: f.env)
            XCTAssertEqual(g.status, 3, g.output)
        }
    }

    func status(_ env: [String: String], _ extra: [String] = []) throws -> (Int32, [String: Any]) {
        let r = try CLI.run(["status", "--json"] + extra, env: env)
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        return (r.status, o)
    }

    /// `status` exit codes: 0 fresh, 1 stale, 2 very stale / none / object missing, 3 bad configuration.
    func testStatusFollowsTheMonitoringPluginConvention() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        var (code, o) = try status(f.env)
        XCTAssertEqual(code, 2, "no backup at all: \(o)")
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        (code, o) = try status(f.env)
        XCTAssertEqual(code, 0, "\(o)")
        XCTAssertEqual(o["status"] as? String, "ok")
        let text = try CLI.run(["status"], env: f.env)
        XCTAssertTrue(text.stdout.hasPrefix("OK - "), text.stdout)
        XCTAssertTrue(text.stdout.contains("| 'age_app.sqlite3'="), text.stdout)
        try f.sql("UPDATE backup_files SET uploaded_at = uploaded_at - 30 * 3600000;")
        XCTAssertEqual(try status(f.env).0, 1, "30 h old with --max-age 26h")
        XCTAssertEqual(try status(f.env, ["--max-age", "48h"]).0, 0)
        try f.sql("UPDATE backup_files SET uploaded_at = uploaded_at - 30 * 3600000;")
        XCTAssertEqual(try status(f.env).0, 2, "60 h old: more than twice the max age")
        try f.sql("UPDATE backup_files SET uploaded_at = uploaded_at + 60 * 3600000;")
        try FileManager.default.removeItem(atPath: f.objectPath(try f.latestKey()))
        (code, o) = try status(f.env)
        XCTAssertEqual(code, 2, "the newest object is missing: \(o)")
        var broken = f.env
        broken["BACKUP_STORAGE"] = "ftp://nowhere"
        XCTAssertEqual(try status(broken).0, 3, "a configuration error is UNKNOWN")
    }

    /// `status` watches restore points where BACKUP_INCREMENTAL is true: none (the cron line left
    /// commented) is CRITICAL, an old one WARNING then CRITICAL, a damaged newest manifest
    /// CRITICAL; databases without the setting are judged on their nightly backups alone.
    func testStatusWatchesRestorePointsWhereTheyAreOn() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        var (code, o) = try status(f.env)
        XCTAssertEqual(code, 0, "\(o)")
        func first(_ o: [String: Any]) -> [String: Any] { (o["databases"] as? [[String: Any]])?.first ?? [:] }
        XCTAssertNil(first(o)["newest_point"], "points are off: \(o)")
        f.env["BACKUP_INCREMENTAL"] = "true"
        (code, o) = try status(f.env)
        XCTAssertEqual(code, 2, "on, but no point: \(o)")
        XCTAssertTrue((first(o)["message"] as? String ?? "").contains("no restore point"), "\(o)")
        let p = try CLI.run(["backup", "--incremental", "--json"], env: f.env)
        XCTAssertEqual(p.status, 0, p.output)
        (code, o) = try status(f.env)
        XCTAssertEqual(code, 0, "\(o)")
        let point = try XCTUnwrap(first(o)["newest_point"] as? [String: Any], "\(o)")
        let made = try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(point["point"] as? String, made["point"] as? String)
        XCTAssertEqual(point["count"] as? Int, 1)
        let text = try CLI.run(["status"], env: f.env)
        XCTAssertTrue(text.stdout.hasPrefix("OK - ") && text.stdout.contains("'point_age_app.sqlite3'="), text.stdout)
        Thread.sleep(forTimeInterval: 2.1)
        XCTAssertEqual(try status(f.env, ["--max-point-age", "2s"]).0, 1, "older than 2 s")
        XCTAssertEqual(try status(f.env, ["--max-point-age", "1s"]).0, 2, "older than twice 1 s")
        let usage = try CLI.run(["status", "--max-point-age", "soon"], env: f.env)
        XCTAssertEqual(usage.status, 2, usage.output)
        XCTAssertTrue(usage.stderr.contains("--max-point-age: duration soon is not understood"), usage.stderr)
        // The newest manifest, damaged where its summary is.
        let manifest = f.objectPath(try XCTUnwrap(made["key"] as? String))
        try sh("printf 'Z' | dd of='\(manifest)' bs=1 seek=40 conv=notrunc status=none")
        (code, o) = try status(f.env)
        XCTAssertEqual(code, 2, "\(o)")
        XCTAssertTrue((first(o)["message"] as? String ?? "").contains("damaged"), "\(o)")
        // Points off again: the nightly backups alone decide.
        f.env["BACKUP_INCREMENTAL"] = "false"
        XCTAssertEqual(try status(f.env).0, 0)
    }

    /// `status` without options walks every profile, like the cron job; the worst one decides.
    func testStatusWalksEveryProfile() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let etc = try s.sub("etc")
        try FileManager.default.createDirectory(
            at: etc.appendingPathComponent("conf.d"), withIntermediateDirectories: true)
        let main = etc.appendingPathComponent("laju-backup.env").path
        try
            "BACKUP_ENCRYPTION_KEY=\(f.key)\nBACKUP_STORAGE=file://\(f.store.path)\nBACKUP_DATABASE=\(f.database.path)\n"
            .write(toFile: main, atomically: true, encoding: .utf8)
        try "BACKUP_DATABASE=\(s.url.appendingPathComponent("never-backed-up.sqlite3").path)\n".write(
            to: etc.appendingPathComponent("conf.d/blog.env"), atomically: true, encoding: .utf8)
        try sh(
            "sqlite3 '\(s.url.appendingPathComponent("never-backed-up.sqlite3").path)' < '\(LocalFixture.knexDDL.path)'"
        )
        let r = try CLI.run(["status"], env: ["LAJU_BACKUP_CONFIG": main])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.stdout.contains("main (") && r.stdout.contains("blog ("), r.stdout)
        XCTAssertTrue(r.stdout.hasPrefix("CRITICAL - "), r.stdout)
        let p = try CLI.run(["profiles"], env: ["LAJU_BACKUP_CONFIG": main])
        XCTAssertEqual(p.stdout.split(separator: "\n").map { String($0.split(separator: "\t")[0]) }, ["main", "blog"])
    }

    /// `doctor`: a healthy setup passes; a key readable by others is a warning; a wrong key and a
    /// full temp directory are errors with the right status.
    func testDoctorFindsWhatIsWrong() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let healthy = try CLI.run(["doctor"], env: f.env)
        XCTAssertEqual(healthy.status, 0, healthy.output)
        for check in [
            "key:", "database:", "catalog:", "temp space:", "store write:", "store read:", "store list:",
            "store delete:"
        ] {
            XCTAssertTrue(healthy.stdout.contains("OK      \(check)"), "\(check)\n\(healthy.stdout)")
        }
        let keyFile = s.url.appendingPathComponent("key.env")
        try "BACKUP_ENCRYPTION_KEY=\(f.key)\n".write(to: keyFile, atomically: true, encoding: .utf8)
        try sh("chmod 0644 '\(keyFile.path)'")
        var viaFile = f.env
        viaFile["BACKUP_ENCRYPTION_KEY"] = nil
        let open = try CLI.run(["doctor", "--env-file", keyFile.path], env: viaFile)
        XCTAssertEqual(open.status, 0, open.output)
        XCTAssertTrue(
            open.stdout.contains("WARNING settings file: \(keyFile.path) holds BACKUP_ENCRYPTION_KEY"), open.stdout)
        XCTAssertFalse(open.output.contains(f.key))
        var wrong = f.env
        wrong["BACKUP_ENCRYPTION_KEY"] = try sh("head -c 32 /dev/urandom | base64").trimmingCharacters(
            in: .whitespacesAndNewlines)
        let w = try CLI.run(["doctor"], env: wrong)
        XCTAssertEqual(w.status, 4, w.output)
        XCTAssertTrue(w.stdout.contains("ERROR   key: the newest backup"), w.stdout)
        let full = try Tmpfs(in: s, size: "64k")
        try sh("head -c 48000 /dev/zero > '\(full.path)/filler' || true")
        f.env["BACKUP_TMPDIR"] = full.path
        let t = try CLI.run(["doctor"], env: f.env)
        XCTAssertEqual(t.status, 6, t.output)
        XCTAssertTrue(t.stdout.contains("ERROR   temp space"), t.stdout)
    }

    /// `doctor` where BACKUP_INCREMENTAL is true: no point yet is a warning, the newest point must
    /// open with the configured key; other databases get no such line.
    func testDoctorChecksRestorePointsWhereTheyAreOn() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        XCTAssertFalse(try CLI.run(["doctor"], env: f.env).stdout.contains("restore points:"))
        f.env["BACKUP_INCREMENTAL"] = "true"
        let none = try CLI.run(["doctor"], env: f.env)
        XCTAssertEqual(none.status, 0, none.output)
        XCTAssertTrue(none.stdout.contains("WARNING restore points: no restore point"), none.stdout)
        XCTAssertEqual(try CLI.run(["backup", "--incremental"], env: f.env).status, 0)
        let ok = try CLI.run(["doctor"], env: f.env)
        XCTAssertEqual(ok.status, 0, ok.output)
        XCTAssertTrue(ok.stdout.contains("OK      restore points: 1 point(s)"), ok.stdout)
        var wrong = f.env
        wrong["BACKUP_ENCRYPTION_KEY"] = try sh("head -c 32 /dev/urandom | base64").trimmingCharacters(
            in: .whitespacesAndNewlines)
        let w = try CLI.run(["doctor"], env: wrong)
        XCTAssertEqual(w.status, 4, w.output)
        // The points are under this database's identity, which the key does not change: they are
        // found, and do not open with this key.
        XCTAssertTrue(
            w.stdout.contains("restore points: the newest restore point")
                && w.stdout.contains("does not open with this key"),
            w.stdout)
        XCTAssertFalse(w.output.contains(f.key))
    }

    /// `doctor` against SeaweedFS credentials that may only write: write is ok, read, list and
    /// delete are reported on their own lines.
    func testDoctorShowsAWriteOnlyIdentityAsSuch() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        _ = try f.backup()
        f.env["WASABI_ACCESS_KEY"] = f.s3.writerAccessKey
        f.env["WASABI_SECRET_KEY"] = f.s3.writerSecretKey
        let r = try CLI.run(["doctor"], env: f.env)
        XCTAssertEqual(r.status, 5, r.output)
        XCTAssertTrue(r.stdout.contains("OK      store write:"), r.stdout)
        XCTAssertTrue(
            r.stdout.contains("ERROR   store list: list denied") || r.stdout.contains("ERROR   store list:"), r.stdout)
        XCTAssertTrue(r.stdout.contains("store delete:"), r.stdout)
        XCTAssertFalse(r.output.contains(f.s3.writerSecretKey))
    }

    /// verify --sample N verifies N older backups besides the newest and records every one.
    func testVerifySampleExercisesOlderBackups() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        for _ in 0..<4 { XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0) }
        let r = try CLI.run(["verify", "--sample", "2", "--json"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let verified = (o["verified"] as! [[String: Any]]).compactMap { $0["key"] as? String }
        XCTAssertEqual(verified.count, 3)
        XCTAssertEqual(Set(verified).count, 3)
        XCTAssertEqual(verified.first, try f.latestKey())
        XCTAssertEqual(
            try f.sql("SELECT count(*) FROM laju_backup_verifications;").trimmingCharacters(in: .newlines), "3")
        // A damaged sampled backup fails the run, after the others were checked.
        let oldest = try f.sql("SELECT key FROM backup_files ORDER BY uploaded_at LIMIT 1;").trimmingCharacters(
            in: .newlines)
        try f.flipByte(oldest, at: 100)
        let bad = try CLI.run(["verify", "--sample", "3"], env: f.env)
        XCTAssertEqual(bad.status, 4, bad.output)
        XCTAssertTrue(bad.stderr.split(separator: "\n").last!.contains(oldest), bad.stderr)
        // status names the newest verified backup.
        let st = try CLI.run(["status", "--json"], env: f.env)
        XCTAssertTrue(st.stdout.contains("\"newest_verified\""), st.stdout)
    }

    /// With --json a failure is a JSON object too, in the same contract.
    func testJSONErrorsFollowTheContract() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        f.env["BACKUP_DATABASE"] = s.url.appendingPathComponent("gone.db").path
        let r = try CLI.run(["backup", "--json"], env: f.env)
        XCTAssertEqual(r.status, 3)
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(o["version"] as? Int, 1)
        let e = o["error"] as! [String: Any]
        XCTAssertEqual(e["exit_status"] as? Int, 3)
        XCTAssertEqual(e["kind"] as? String, "source")
        XCTAssertTrue((e["message"] as? String)?.contains("does not exist") ?? false)
    }
}
