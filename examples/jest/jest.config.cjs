// Runs only this folder's example: `npx jest --config examples/jest/jest.config.cjs`.
module.exports = {
  rootDir: __dirname,
  testMatch: ['<rootDir>/*.test.cjs'],
  testEnvironment: 'node',
};
