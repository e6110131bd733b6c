// Prints arweave-js (npm `arweave`) reference values for the Rust crate's tests, so the
// vectors come from the real library at test time instead of being committed.
//
// Usage: node vectors.js REQUEST.json  (prints one JSON object on stdout)
// Request:
//   files:     [path, ...]                  -> data_root, chunk ranges and proofs of each file
//   deep_hash: [item, ...]                  -> deepHash of each; item = {blob: b64url} | {list: [item]}
//   sign:      [{jwk?, data_file, last_tx, reward, tags: [[name, value]], target?, quantity?}]
//              -> the transaction signed with salt length 0 (deterministic) and with
//                 arweave-js's default (maximum) salt; a fresh JWK is generated when none is given.
//   wallets:   N                          -> N fresh JWKs with their addresses
const fs = require("fs");
const Arweave = require("arweave");
const { generateTransactionChunks } = require("arweave/node/lib/merkle");
const deepHash = require("arweave/node/lib/deepHash").default;

const arweave = Arweave.init({ host: "127.0.0.1", port: 1, protocol: "http" });
const b64 = (buf) => Arweave.utils.bufferTob64Url(new Uint8Array(buf));
const unb64 = (s) => Arweave.utils.b64UrlToBuffer(s);

function toDeepHashInput(item) {
  if (Array.isArray(item.list)) return item.list.map(toDeepHashInput);
  return unb64(item.blob);
}

async function fileVectors(path) {
  const data = new Uint8Array(fs.readFileSync(path));
  const { data_root, chunks, proofs } = await generateTransactionChunks(data);
  return {
    size: data.byteLength,
    data_root: b64(data_root),
    chunks: chunks.map((c) => ({ min: c.minByteRange, max: c.maxByteRange })),
    proofs: proofs.map((p) => ({ offset: p.offset, data_path: b64(p.proof) })),
  };
}

async function signVectors(req) {
  const jwk = req.jwk || (await arweave.wallets.generate());
  const make = async () => {
    const tx = await arweave.createTransaction(
      {
        data: new Uint8Array(fs.readFileSync(req.data_file)),
        last_tx: req.last_tx,
        reward: req.reward,
        target: req.target || "",
        quantity: req.quantity || "0",
      },
      jwk
    );
    for (const [name, value] of req.tags || []) tx.addTag(name, value);
    return tx;
  };
  const salt0 = await make();
  await arweave.transactions.sign(salt0, jwk, { saltLength: 0 });
  const dflt = await make();
  await arweave.transactions.sign(dflt, jwk);
  const strip = (tx) => {
    const json = tx.toJSON();
    delete json.data; // the caller has the file
    return json;
  };
  return {
    jwk,
    address: await arweave.wallets.jwkToAddress(jwk),
    signature_data: b64(await salt0.getSignatureData()),
    salt0: strip(salt0),
    default_salt: strip(dflt),
    default_salt_verifies: await arweave.transactions.verify(dflt),
  };
}

async function main() {
  const req = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const out = { arweave_version: require("arweave/package.json").version };
  out.files = [];
  for (const f of req.files || []) out.files.push(await fileVectors(f));
  out.deep_hash = [];
  for (const item of req.deep_hash || []) out.deep_hash.push(b64(await deepHash(toDeepHashInput(item))));
  out.sign = [];
  for (const s of req.sign || []) out.sign.push(await signVectors(s));
  out.wallets = [];
  for (let i = 0; i < (req.wallets || 0); i++) {
    const jwk = await arweave.wallets.generate();
    out.wallets.push({ jwk, address: await arweave.wallets.jwkToAddress(jwk) });
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
