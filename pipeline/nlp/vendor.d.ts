/** Minimal typings for the `stopword` package (it ships none). */
declare module "stopword" {
  export function removeStopwords(tokens: string[], stopwords?: string[]): string[];
  export const eng: string[];
  export const deu: string[];
  export const fra: string[];
  export const spa: string[];
  export const ita: string[];
  export const nld: string[];
  export const por: string[];
  export const rus: string[];
  export const swe: string[];
  export const nob: string[];
  export const fas: string[];
}
