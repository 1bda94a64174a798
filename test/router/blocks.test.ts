import { describe, expect, it } from "vitest";
import { namedBlock } from "../../router/blocks.ts";

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
