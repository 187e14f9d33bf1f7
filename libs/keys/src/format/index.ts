export {
  DEFAULT_KEY_PREFIX,
  KEY_FORMAT_VERSION,
  KeyFormatError,
  MAX_TOKEN_LENGTH,
  SECRET_SCANNER_REGEX_SOURCE,
  checkKey,
  decodeKey,
  encodeKey,
  keyRegex,
  looksLikeKey,
} from './key-format';
export type {
  KeyDecodeFailureReason,
  KeyDecodeResult,
  KeyFormatErrorReason,
} from './key-format';
