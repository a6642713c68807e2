// For binding.gyp, as node-addon-api's index.js: the headers' directory, relative to the addon's
// directory (where node-gyp runs this), so gyp never meets a space of the install's own path.
//   "include_dirs": ["<!(node -p \"require('@wirecage/napi-glue/gyp').include_dir\")"]
'use strict';
const path = require('node:path');

module.exports = {
  include_dir: path.relative('.', path.join(__dirname, 'native')),
};
