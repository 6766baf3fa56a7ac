#!/usr/bin/env node
// An independent check of what cloud_helper wrote to Blob storage, with
// Microsoft's own SDK (@azure/storage-blob) rather than our client:
//
//   node blob_check.js compare BLOB_URL FILE
//
// streams the blob down and compares it byte for byte with FILE (memory
// stays at one SDK chunk), then prints one JSON line:
//   {"equal": true, "size": N, "fileSize": N, "firstDifference": null,
//    "contentMD5": "base64 or null", "blobType": "PageBlob",
//    "pageRanges": [[start, end], ...]}      (end inclusive, as Azure reports)
//
// Credentials: AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY, else the
// connection string in AZURE_STORAGE_CONNECTION_STRING, else Azurite's
// well-known devstoreaccount1 key. Exit status 0 whenever the check ran
// (read "equal"), 2 on usage or request errors.
"use strict";

const fs = require("fs");
const { BlobClient, StorageSharedKeyCredential } = require("@azure/storage-blob");

const DEV_ACCOUNT = "devstoreaccount1";
const DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

function credential() {
  if (process.env.AZURE_STORAGE_ACCOUNT && process.env.AZURE_STORAGE_KEY) {
    return new StorageSharedKeyCredential(process.env.AZURE_STORAGE_ACCOUNT, process.env.AZURE_STORAGE_KEY);
  }
  const cs = process.env.AZURE_STORAGE_CONNECTION_STRING || "";
  const fields = Object.fromEntries(
    cs.split(";").filter((p) => p.includes("=")).map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)]));
  if (fields.AccountName && fields.AccountKey) return new StorageSharedKeyCredential(fields.AccountName, fields.AccountKey);
  return new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY);
}

async function compare(url, path) {
  const blob = new BlobClient(url, credential(), { retryOptions: { maxTries: 3 } });
  const props = await blob.getProperties();
  const fd = fs.openSync(path, "r");
  const fileSize = fs.fstatSync(fd).size;
  let offset = 0;
  let firstDifference = null;
  const scratch = Buffer.alloc(4 << 20);
  const download = await blob.download(0);
  for await (const chunk of download.readableStreamBody) {
    for (let done = 0; done < chunk.length && firstDifference === null;) {
      const n = Math.min(chunk.length - done, scratch.length);
      const got = offset + done < fileSize ? fs.readSync(fd, scratch, 0, n, offset + done) : 0;
      const want = chunk.subarray(done, done + n);
      if (got < n || !scratch.subarray(0, n).equals(want)) {
        for (let i = 0; i < n; i++) {
          if (i >= got || scratch[i] !== want[i]) {
            firstDifference = offset + done + i;
            break;
          }
        }
      }
      done += n;
    }
    offset += chunk.length;
  }
  fs.closeSync(fd);
  if (firstDifference === null && offset !== fileSize) firstDifference = Math.min(offset, fileSize);
  let pageRanges = [];
  if (props.blobType === "PageBlob") {
    // listPageRanges follows the service's continuation markers; it yields
    // {start, end} with end inclusive (getPageRanges reshapes them to offset/count).
    for await (const r of blob.getPageBlobClient().listPageRanges()) pageRanges.push([r.start, r.end]);
  }
  return {
    equal: firstDifference === null,
    size: offset,
    fileSize,
    firstDifference,
    contentMD5: props.contentMD5 ? Buffer.from(props.contentMD5).toString("base64") : null,
    blobType: props.blobType,
    pageRanges,
  };
}

async function main() {
  const [cmd, url, path] = process.argv.slice(2);
  if (cmd !== "compare" || !url || !path) {
    process.stderr.write("usage: node blob_check.js compare BLOB_URL FILE\n");
    return 2;
  }
  try {
    process.stdout.write(JSON.stringify(await compare(url, path)) + "\n");
    return 0;
  } catch (e) {
    const code = (e.details && e.details.errorCode) || e.code || "";
    process.stderr.write(`blob_check: ${url}: HTTP ${e.statusCode || "-"} ${code} ${(e.message || "").split("\n")[0]}\n`);
    return 2;
  }
}

main().then((code) => process.exit(code));
