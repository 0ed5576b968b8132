// Runs only this folder's example: `npx mocha --config examples/mocha/.mocharc.cjs`.
module.exports = {
  spec: [__dirname + '/*.test.mjs'],
  timeout: 10000,
};
