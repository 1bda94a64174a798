import { describe, expect, it } from "vitest";
import { keccak256 } from "viem";
import { contradiction } from "../../router/contradiction.ts";

// What the router compares between a call and its answer. The failover tests show a contradicting
// answer blamed and the true one given through a real router and chain; these show the forms real
// nodes write that must pass (leading zeros, mixed case, wildcards, tags) and each lie told.

const call = (method: string, params: unknown) => ({ id: 1, method, params, notification: false });
const hash = (byte: string) => `0x${byte.repeat(32)}`;
const address = (byte: string) => `0x${byte.repeat(20)}`;
const log = (at: Partial<{ address: string; topics: string[]; blockNumber: string | null; blockHash: string }>) => ({
  address: address("11"),
  topics: [hash("22"), hash("33")],
  data: "0x",
  blockNumber: "0x10",
  blockHash: hash("44"),
  transactionHash: hash("77"),
  logIndex: "0x0",
  ...at,
});

describe("contradiction", () => {
  it("passes what nodes write for what was asked: leading zeros, mixed case, tags not compared", () => {
    const passing: [string, unknown, unknown][] = [
      ["eth_getBlockByNumber", ["0x10", false], { number: "0x10" }],
      ["eth_getBlockByNumber", ["0x0010", false], { number: "0x10" }],
      // "earliest" is a tag: a node with pruned history (geth ≥ 1.15.10, reth) answers its first block.
      ["eth_getBlockByNumber", ["earliest", false], { number: "0xed14f1" }],
      ["eth_getLogs", [{ fromBlock: "earliest", toBlock: "earliest" }], [log({})]],
      // A pending transaction (EDR): null block and index.
      ["eth_getTransactionByBlockNumberAndIndex", ["pending", "0x0"], { blockNumber: null, blockHash: null, transactionIndex: null }],
      ["eth_getBlockByNumber", ["latest", false], { number: "0x99" }],
      ["eth_getBlockByNumber", ["pending", false], { number: null }],
      ["eth_getBlockByNumber", ["0x10", false], null],
      ["eth_getBlockByNumber", ["latest", false], null],
      ["eth_getBlockByHash", [hash("AB"), false], { hash: hash("ab") }],
      ["eth_getTransactionReceipt", [hash("ab")], { transactionHash: hash("AB") }],
      ["eth_getTransactionByBlockNumberAndIndex", ["0x10", "0x01"], { blockNumber: "0x10", transactionIndex: "0x1" }],
      ["eth_getTransactionBySenderAndNonce", [address("0A"), "0x5"], { from: address("0a"), nonce: "0x5" }],
      // An address with leading zeros is not a quantity to shorten.
      ["eth_getProof", ["0x00000000219ab540356cBB839Cbe05303d7705Fa", [], "latest"], { address: "0x00000000219ab540356cbb839cbe05303d7705fa" }],
      ["eth_getBlockReceipts", [{ blockHash: hash("44") }], [{ blockHash: hash("44") }, { blockHash: hash("44") }]],
      ["eth_getBlockReceipts", ["latest"], [{ blockNumber: "0x1" }]],
      ["eth_getLogs", [{ fromBlock: "0x10", toBlock: "0x10", address: [address("11").toUpperCase().replace("0X", "0x"), address("55")] }], [log({})]],
      ["eth_getLogs", [{ fromBlock: "0x0", toBlock: "latest", topics: [null, [hash("99"), hash("33")]] }], [log({})]],
      ["eth_getLogs", [{ topics: [[], hash("33")] }], [log({})]],
      ["eth_getLogs", [{ blockHash: hash("44"), fromBlock: "0x99" }], [log({})]],
      // Logs out of order (some chains' nodes), and one index in two transactions (counted per transaction).
      ["eth_getLogs", [{}], [{ ...log({}), logIndex: "0x1" }, log({}), { ...log({}), transactionHash: hash("78") }]],
      ["eth_getLogs", [{ fromBlock: "0x10", toBlock: "pending" }], [log({ blockNumber: null })]],
      ["eth_sendRawTransaction", ["0xc0"], keccak256("0xc0")],
      ["eth_call", [{ to: address("11") }, "latest"], "0x"],
    ];
    for (const [method, params, result] of passing) expect(contradiction(call(method, params), result), `${method} ${JSON.stringify(params)}`).toBeNull();
  });

  it("tells each answer to another question, in words", () => {
    const lies: [string, unknown, unknown, RegExp][] = [
      ["eth_getBlockByNumber", ["0x0", false], { number: "0x5" }, /^with a block of number 0x5, not 0x0 as asked$/],
      ["eth_getBlockByNumber", ["0x5", false], {}, /number \(none\), not 0x5/],
      // A latest block whose number cannot be read cannot be held back as ahead (a review: viem reads these as 259).
      ["eth_getBlockByNumber", ["latest", false], { number: 259 }, /^with a block of number 259, not a hex quantity$/],
      ["eth_getBlockByNumber", ["latest", false], { number: " 0x103" }, /^with a block of number  0x103, not a hex quantity$/],
      ["eth_getBlockByNumber", ["finalized", false], {}, /^with a block of number \(none\), not a hex quantity$/],
      ["eth_getBlockByHash", [hash("ab"), false], { hash: hash("cd") }, /hash 0xcdcd/],
      ["eth_getTransactionByHash", [hash("ab")], { hash: hash("cd") }, /transaction of hash 0xcdcd/],
      ["eth_getTransactionByBlockHashAndIndex", [hash("ab"), "0x0"], { blockHash: hash("ab"), transactionIndex: "0x1" }, /transactionIndex 0x1, not 0x0/],
      ["eth_getTransactionBySenderAndNonce", [address("0a"), "0x5"], { from: address("0b"), nonce: "0x5" }, /from 0x0b0b/],
      ["eth_getBlockReceipts", ["0x10"], [{ blockNumber: "0x10" }, { blockNumber: "0x11" }], /receipt of blockNumber 0x11, not 0x10/],
      ["eth_getBlockReceipts", ["0x10"], [{ blockNumber: "0x10", blockHash: hash("44") }, { blockNumber: "0x10", blockHash: hash("55") }], /receipt of blockHash 0x5555.*, not 0x4444/],
      ["eth_getLogs", [{ fromBlock: "0x10", toBlock: "0x10" }], [log({ blockNumber: null })], /log of block null, not a block number up to 16 as asked/],
      ["eth_getLogs", [{ toBlock: "0x10" }], [log({ blockNumber: `0x${"0".repeat(70)}10` })], /not a block number up to 16/],
      ["eth_getLogs", [{ fromBlock: "0x11" }], [log({})], /log of block 16, outside blocks 17 to … asked/],
      ["eth_getLogs", [{ toBlock: "0xf" }], [log({})], /log of block 16, outside blocks … to 15 asked/],
      ["eth_getLogs", [{ fromBlock: "0x0", toBlock: "0x20" }], [log({ blockNumber: `0x${"0".repeat(20)}10000000000000000` })], /outside blocks 0 to 32/],
      ["eth_getLogs", [{ blockHash: hash("45") }], [log({})], /log of block 0x4444/],
      ["eth_getLogs", [{ address: address("12") }], [log({})], /log of address 0x1111/],
      ["eth_getLogs", [{ topics: [null, null, hash("33")] }], [log({})], /topic 2 is \(none\)/],
      ["eth_getLogs", [{}], [log({}), "a log"], /a log that is not an object/],
      ["eth_getLogs", [{}], [log({}), log({ blockHash: hash("45") }), { ...log({}), logIndex: "0x00" }], /with log 0x00 of transaction 0x7777.* twice/],
      ["eth_sendRawTransaction", ["0xc0"], hash("ab"), /^with 0xabab.*, not the hash of the transaction sent \(0x[0-9a-f]{64}\)$/],
      ["eth_sendRawTransactionSync", ["0xc0"], { transactionHash: hash("ab") }, /receipt of transactionHash 0xabab/],
    ];
    for (const [method, params, result, words] of lies) expect(contradiction(call(method, params), result), `${method} ${JSON.stringify(params)}`).toMatch(words);
  });
});
