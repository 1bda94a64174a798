import { describe, expect, it } from "vitest";
import { ClientHeads, namedBlock, readsLatest, shownBlock } from "../../router/blocks.ts";

// Which block a call names by number: such a call goes to providers known to hold it (failover.ts).

const call = (method: string, params: unknown) => ({ id: 1, method, params, notification: false });

describe("the block a call names", () => {
  it("reads the block parameter of each method, by number or EIP-1898's blockNumber", () => {
    expect(namedBlock(call("eth_getBlockByNumber", ["0x10", false]))).toBe(16);
    expect(namedBlock(call("eth_getBalance", ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x2a"]))).toBe(42);
    expect(namedBlock(call("eth_getStorageAt", ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x0", "0x3"]))).toBe(3);
    expect(namedBlock(call("eth_call", [{ to: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" }, { blockNumber: "0xff" }]))).toBe(255);
    expect(namedBlock(call("eth_feeHistory", ["0x4", "0x64", [25, 75]]))).toBe(100);
  });

  it("takes the later end of a log range", () => {
    expect(namedBlock(call("eth_getLogs", [{ fromBlock: "0x5", toBlock: "0x9" }]))).toBe(9);
    expect(namedBlock(call("eth_getLogs", [{ fromBlock: "0x5", toBlock: "latest" }]))).toBe(5);
    expect(namedBlock(call("eth_getLogs", [{ blockHash: `0x${"ab".repeat(32)}` }]))).toBe(-1);
  });

  it("names none for tags, hashes, missing or malformed blocks, and methods without one", () => {
    for (const params of [["latest", false], ["safe", false], [], null, [`0x${"ab".repeat(32)}`, false], ["0x", false], ["10", false], [{ blockHash: "0x01" }, false]]) {
      expect(namedBlock(call("eth_getBlockByNumber", params)), JSON.stringify(params)).toBe(-1);
    }
    expect(namedBlock(call("eth_getBalance", ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"]))).toBe(-1);
    expect(namedBlock(call("eth_sendRawTransaction", ["0x10"]))).toBe(-1);
    expect(namedBlock(call("eth_getTransactionByHash", ["0x10"]))).toBe(-1);
  });
});

describe("reads of the latest state and the blocks answers show", () => {
  it("tells a read of the chain's head from one of a given block", () => {
    const address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
    for (const latest of [call("eth_blockNumber", []), call("eth_getBalance", [address]), call("eth_getBalance", [address, "latest"]), call("eth_getTransactionCount", [address, "pending"]), call("eth_call", [{ to: address }]), call("eth_getLogs", [{ fromBlock: "0x5" }]), call("eth_getLogs", [{ toBlock: "latest" }])]) {
      expect(readsLatest(latest), latest.method).toBe(true);
    }
    for (const fixed of [call("eth_getBalance", [address, "0x2a"]), call("eth_getBalance", [address, "safe"]), call("eth_getLogs", [{ toBlock: "0x9" }]), call("eth_getLogs", [{ blockHash: `0x${"ab".repeat(32)}` }]), call("eth_getTransactionReceipt", [`0x${"ab".repeat(32)}`]), call("eth_gasPrice", [])]) {
      expect(readsLatest(fixed), fixed.method).toBe(false);
    }
  });

  it("reads the block an answer shows its provider holds: a height, a receipt's block", () => {
    expect(shownBlock("eth_blockNumber", "0x2a", 42)).toBe(42);
    expect(shownBlock("eth_getTransactionReceipt", { blockNumber: "0x10", status: "0x1" }, null)).toBe(16);
    expect(shownBlock("eth_getTransactionReceipt", null, null)).toBeNull();
    expect(shownBlock("eth_getBalance", "0x2a", 42)).toBeNull(); // a quantity, but no height
  });

  it("brings a client's block down only from the block its call started with (another call may have shown it more since)", () => {
    const heads = new ClientHeads(60_000);
    heads.shown(1, "10.0.0.1", 100, 0);
    heads.shown(1, "10.0.0.1", 105, 1);
    heads.lower(1, "10.0.0.1", 100, 99, 2);
    expect(heads.of(1, "10.0.0.1", 3)).toBe(105);
    heads.lower(1, "10.0.0.1", 105, 99, 4);
    expect(heads.of(1, "10.0.0.1", 5)).toBe(99);
    expect(heads.of(2, "10.0.0.1", 5)).toBe(-1);
  });
});
