#!/usr/bin/env node
// An independent implementation of the Laju backup format with Node's built-in crypto and zlib,
// following the original backup.ts/restore.ts step by step (see the format page). Shares no code
// with laju-backup; the interop tests use it in both directions.
//
//   node laju_envelope.mjs backup DB STORE_DIR [CATALOG_DB]
//       like backup.ts: snapshot (sqlite3 .backup), createGzip() (zlib defaults, level 6), then
//       aes-256-gcm with a random 12-byte IV, tag kept apart; the object goes to
//       STORE_DIR/backups/<db name>-<YYYY-MM-DDTHH:mm>-<uuid>.db.gz.enc with its metadata
//       (algo, iv, tag, comp, checksum) in <object>.meta.json, as laju-backup's local store keeps
//       it; then the twelve-column backup_files row (ms timestamps) is inserted with the sqlite3
//       CLI. Prints {"key", "id", "checksum", "uploaded_at"} as JSON.
//   node laju_envelope.mjs open OBJECT OUT
//       like restore.ts: IV and tag from OBJECT.meta.json, createDecipheriv + setAuthTag + gunzip.
// The key is BACKUP_ENCRYPTION_KEY, decoded as the original does (base64, then hex, then UTF-8).
import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import { createGzip, createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function encryptionKey() {
  const text = process.env.BACKUP_ENCRYPTION_KEY;
  if (!text) throw new Error('BACKUP_ENCRYPTION_KEY is not set');
  for (const enc of ['base64', 'hex', 'utf8']) {
    const buf = Buffer.from(text, enc);
    if (buf.length === 32) return buf;
  }
  throw new Error('BACKUP_ENCRYPTION_KEY must decode to 32 bytes');
}

function stamp(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

const md5File = (file) => createHash('md5').update(fs.readFileSync(file)).digest('hex');
const q = (s) => (s === null ? 'NULL' : typeof s === 'number' ? String(s) : `'${String(s).replaceAll("'", "''")}'`);

async function backup(db, storeDir, catalog) {
  const key = encryptionKey();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'laju-node-'));
  try {
    const snap = path.join(tmp, 'snapshot.db');
    const gz = snap + '.gz';
    const enc = gz + '.enc';
    execFileSync('sqlite3', [db, `.backup '${snap}'`]);
    await pipeline(fs.createReadStream(snap), createGzip(), fs.createWriteStream(gz));
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    await pipeline(fs.createReadStream(gz), cipher, fs.createWriteStream(enc));
    const tag = cipher.getAuthTag();
    const checksum = md5File(enc);
    const objectKey = `backups/${path.basename(db)}-${stamp(new Date())}-${randomUUID()}.db.gz.enc`;
    const target = path.join(storeDir, objectKey);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(enc, target);
    const meta = { algo: 'aes-256-gcm', iv: iv.toString('base64'), tag: tag.toString('base64'), comp: 'gzip', checksum };
    fs.writeFileSync(target + '.meta.json', JSON.stringify(meta));
    const row = {
      id: randomUUID(), key: objectKey, file_name: path.basename(objectKey), file_size: fs.statSync(enc).size,
      compression: 'gzip', storage: 's3', checksum, uploaded_at: Date.now(), deleted_at: null,
      encryption: 'aes-256-gcm', enc_iv: meta.iv, enc_tag: meta.tag,
    };
    if (catalog) {
      const cols = Object.keys(row);
      execFileSync('sqlite3', [catalog,
        `INSERT INTO backup_files (${cols.map((c) => '`' + c + '`').join(', ')}) VALUES (${cols.map((c) => q(row[c])).join(', ')})`]);
    }
    process.stdout.write(JSON.stringify({ key: objectKey, id: row.id, checksum, uploaded_at: row.uploaded_at }) + '\n');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function open(object, out) {
  const meta = JSON.parse(fs.readFileSync(object + '.meta.json', 'utf8'));
  if (meta.algo !== 'aes-256-gcm' || meta.comp !== 'gzip') throw new Error('not a Laju object');
  if (md5File(object) !== meta.checksum) throw new Error('checksum mismatch');
  const decipher = createDecipheriv('aes-256-gcm', encryptionKey(), Buffer.from(meta.iv, 'base64'));
  decipher.setAuthTag(Buffer.from(meta.tag, 'base64'));
  await pipeline(fs.createReadStream(object), decipher, createGunzip(), fs.createWriteStream(out));
}

const [cmd, ...args] = process.argv.slice(2);
try {
  if (cmd === 'backup') await backup(args[0], args[1], args[2]);
  else if (cmd === 'open') await open(args[0], args[1]);
  else throw new Error(`unknown command ${cmd}`);
} catch (e) {
  process.stderr.write(`laju_envelope.mjs: ${e.message}\n`);
  process.exit(1);
}
